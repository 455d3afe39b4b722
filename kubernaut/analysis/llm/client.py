"""One structured chat completion through the OpenAI SDK, in whichever output mode the provider needs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI

from kubernaut.analysis.llm_answer import SCHEMA_NAME


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str | None


class ProviderError(Exception):
    """The provider failed to answer (as opposed to answering badly): counts against the circuit breaker."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def status_kind(status: int) -> str:
    """``server_error`` (5xx) and ``unusable`` (401/403/404: credentials or model name wrong) say the provider
    cannot serve us: they count against the breaker. ``rejected`` (any other 4xx, e.g. a prompt longer than the
    model's context window, a parameter it does not support) is an answer about this one request."""
    if status >= 500:
        return "server_error"
    return "unusable" if status in (401, 403, 404) else "rejected"


@contextmanager
def provider_errors() -> Iterator[None]:
    """The SDK's exceptions as :class:`ProviderError` of a kind (the breaker and the metrics go by the kind)."""
    try:
        yield
    except openai.APITimeoutError as exc:
        raise ProviderError("timeout", str(exc) or "request timed out") from None
    except openai.APIConnectionError as exc:
        raise ProviderError("connection", str(exc) or "connection failed") from None
    except openai.RateLimitError as exc:
        raise ProviderError("rate_limited", _status_message(exc)) from None
    except openai.APIStatusError as exc:
        raise ProviderError(status_kind(exc.status_code), _status_message(exc)) from None
    except openai.APIError as exc:  # e.g. a body that is not a chat completion
        raise ProviderError("bad_response", str(exc)[:300]) from None


def request_options(mode: str, schema: dict[str, Any], strict: bool) -> dict[str, Any]:
    """The request fields that ask for structured output in ``mode``."""
    if mode == "json_schema":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": strict}}}
    if mode == "json_object":
        # llama-cpp-python's extension: the schema rides along and is enforced by its grammar.
        return {"response_format": {"type": "json_object", "schema": schema}}
    if mode == "tools":
        function = {"name": SCHEMA_NAME, "description": "Record the remediation decision.", "parameters": schema}
        if strict:
            function["strict"] = True
        return {"tools": [{"type": "function", "function": function}],
                "tool_choice": {"type": "function", "function": {"name": SCHEMA_NAME}}}
    return {}  # prompt: the system prompt describes the JSON; validation does the rest


def _text(response: Any, mode: str) -> str:
    choices = getattr(response, "choices", None) or []
    if not choices:
        return ""
    message = choices[0].message
    if mode == "tools" and message.tool_calls:
        return message.tool_calls[0].function.arguments or ""
    return message.content or ""


async def complete(client: AsyncOpenAI, *, model: str, messages: list[dict[str, str]], schema: dict[str, Any],
                   mode: str, strict: bool, max_tokens: int, timeout_s: float, temperature: float) -> Completion:
    started = time.perf_counter()
    with provider_errors():
        response = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=temperature, timeout=timeout_s,
            **request_options(mode, schema, strict),
        )
    latency_ms = (time.perf_counter() - started) * 1000
    usage = getattr(response, "usage", None)
    choices = getattr(response, "choices", None) or []
    return Completion(
        text=_text(response, mode),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        latency_ms=latency_ms,
        finish_reason=choices[0].finish_reason if choices else None,
    )


@dataclass(frozen=True)
class ToolRequest:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolTurn:
    """One investigation turn: the model's text and the tools it asked for."""

    content: str
    tool_calls: list[ToolRequest]
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str | None


async def chat_with_tools(client: AsyncOpenAI, *, model: str, messages: list[dict[str, Any]],
                          tools: list[dict[str, Any]], max_tokens: int, timeout_s: float, temperature: float
                          ) -> ToolTurn:
    """A chat completion that may answer with tool calls (``tool_choice: auto``); errors as in :func:`complete`."""
    started = time.perf_counter()
    with provider_errors():
        response = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=temperature, timeout=timeout_s,
            tools=tools, tool_choice="auto")
    latency_ms = (time.perf_counter() - started) * 1000
    usage = getattr(response, "usage", None)
    choices = getattr(response, "choices", None) or []
    message = choices[0].message if choices else None
    calls = [ToolRequest(id=str(call.id or f"call_{i}"), name=str(call.function.name or ""),
                         arguments=str(call.function.arguments or ""))
             for i, call in enumerate(getattr(message, "tool_calls", None) or []) if getattr(call, "function", None)]
    return ToolTurn(content=(getattr(message, "content", None) or "") if message else "", tool_calls=calls,
                    prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                    completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
                    latency_ms=latency_ms, finish_reason=choices[0].finish_reason if choices else None)


def _status_message(exc: openai.APIStatusError) -> str:
    return f"HTTP {exc.status_code}: {str(exc.message)[:300]}"
