"""Read-only tools for the LLM's investigation, declared as data: a name, a description, a pydantic model of the
arguments (its JSON schema is what the model sees), a time limit, and an async function.

The registry runs one call: it validates the arguments, enforces the time limit and the output cap, and
returns the output wrapped as untrusted data together with the record kept in the analysis. A tool raises
:class:`ToolRefused` for what policy forbids (a Secret's content, an object outside the incident's scope):
such a request is the model misbehaving (or being steered by hostile alert text) and ends the investigation.
:class:`ToolFailed` is an ordinary failure (not found, no Prometheus configured) the model may react to.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from kubernaut.context.summarize import clip
from kubernaut.models.analysis import ToolCallRecord

_ARGUMENT_CHARS = 400


class ToolRefused(Exception):
    """The request is outside what tools may read: the investigation ends."""


class ToolFailed(Exception):
    """The tool could not answer; the model is told why and may go on."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    params: type[BaseModel]
    run: Callable[[Any, Any], Awaitable[Any]]  # (validated params, the investigation's scope) → JSON-able output
    timeout_s: float | None = None  # None → analysis.llm_tool_call_timeout_s

    def schema(self) -> dict[str, Any]:
        parameters = self.params.model_json_schema()
        parameters.pop("title", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": parameters}}


@dataclass
class ToolOutput:
    text: str  # what goes back to the model (already capped); never instructions
    record: ToolCallRecord
    refused: bool = False


def _arguments(raw: str) -> dict[str, Any] | str:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return clip(raw, _ARGUMENT_CHARS)
    if not isinstance(value, dict):
        return clip(raw, _ARGUMENT_CHARS)
    text = json.dumps(value, ensure_ascii=True, default=str)
    return value if len(text) <= _ARGUMENT_CHARS else clip(text, _ARGUMENT_CHARS)


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self.tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"tool {tool.name} declared twice")
            self.tools[tool.name] = tool

    def schemas(self) -> list[dict[str, Any]]:
        return [tool.schema() for tool in self.tools.values()]

    async def call(self, name: str, raw_arguments: str, scope: Any, *, timeout_s: float, output_chars: int
                   ) -> ToolOutput:
        started = time.perf_counter()
        arguments = _arguments(raw_arguments)
        record = ToolCallRecord(tool=clip(name, 80), arguments=arguments, outcome="ok")

        def done(outcome: str, text: str, detail: str | None = None, refused: bool = False) -> ToolOutput:
            record.outcome, record.detail = outcome, clip(detail, 300) if detail else None
            record.size = len(text)
            if len(text) > output_chars:
                text, record.truncated = text[:output_chars] + " …[truncated]", True
            record.latency_ms = round((time.perf_counter() - started) * 1000, 1)
            return ToolOutput(text=text, record=record, refused=refused)

        tool = self.tools.get(name)
        if tool is None:
            return done("unknown", f"error: no tool named {clip(name, 80)!r}", f"unknown tool {clip(name, 80)!r}",
                        refused=True)
        if not isinstance(arguments, dict):
            return done("error", "error: the arguments must be one JSON object", "arguments are not a JSON object")
        try:
            params = tool.params.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in exc.errors())
            return done("error", f"error: invalid arguments: {clip(problems, 300)}", clip(problems, 300))
        try:
            output = await asyncio.wait_for(tool.run(params, scope), timeout=tool.timeout_s or timeout_s)
        except asyncio.TimeoutError:
            return done("timeout", f"error: {name} did not answer within {tool.timeout_s or timeout_s:g}s",
                        "time limit")
        except ToolRefused as exc:
            return done("refused", f"refused: {exc}", str(exc), refused=True)
        except ToolFailed as exc:
            return done("error", f"error: {exc}", str(exc))
        text = output if isinstance(output, str) else json.dumps(output, separators=(",", ":"), default=str,
                                                                 ensure_ascii=True)
        return done("ok", text)
