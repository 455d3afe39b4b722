"""A local OpenAI-protocol peer that answers with scripted tool calls, texts or decisions, in order, over real HTTP
(driven by the real ``openai`` client). Every request body is recorded, so tests can check what the model was
shown (tool outputs, evidence) and what was offered (tools)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.support.openai_peer import Answer, OpenAIPeer, completion, error


@dataclass
class Turn:
    """One reply: tool calls [(name, arguments)], or a text; ``status`` != 200 answers an error; sent after
    ``delay_s``."""

    tool_calls: list[tuple[str, Any]] = field(default_factory=list)
    content: str | None = None
    status: int = 200
    prompt_tokens: int = 300
    completion_tokens: int = 30
    delay_s: float = 0.0


def calls(*pairs: tuple[str, Any]) -> Turn:
    return Turn(tool_calls=list(pairs))


def text(content: str) -> Turn:
    return Turn(content=content)


@dataclass
class ToolCallingLLM(OpenAIPeer):
    turns: list[Turn] = field(default_factory=list)

    def script(self, *turns: Turn | str) -> None:
        self.turns.extend(t if isinstance(t, Turn) else text(t) for t in turns)

    def answer(self, body: dict[str, Any]) -> Answer:
        turn = self.turns.pop(0) if self.turns else Turn(status=500, content="nothing scripted")
        if turn.status != 200:
            return error(turn.content or "error", turn.status, "invalid_request_error")
        message: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if turn.tool_calls:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{len(self.requests)}_{i}", "type": "function",
                 "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
                for i, (name, args) in enumerate(turn.tool_calls)]}
        return Answer(completion(body, message, "tool_calls" if turn.tool_calls else "stop", turn.prompt_tokens,
                                 turn.completion_tokens, "chatcmpl-tools"), delay_s=turn.delay_s)


def tool_llm() -> Iterator[ToolCallingLLM]:
    server = ToolCallingLLM().start()
    yield server
    server.stop()
