"""A local OpenAI-protocol peer that answers with scripted tool calls, texts or decisions, in order, over real HTTP
(driven by the real ``openai`` client). Every request body is recorded, so tests can check what the model was
shown (tool outputs, evidence) and what was offered (tools)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.sinks import free_port


@dataclass
class Turn:
    """One reply: tool calls [(name, arguments)], or a text; ``status`` != 200 answers an error."""

    tool_calls: list[tuple[str, Any]] = field(default_factory=list)
    content: str | None = None
    status: int = 200
    prompt_tokens: int = 300
    completion_tokens: int = 30


def calls(*pairs: tuple[str, Any]) -> Turn:
    return Turn(tool_calls=list(pairs))


def text(content: str) -> Turn:
    return Turn(content=content)


@dataclass
class ToolCallingLLM:
    port: int = field(default_factory=free_port)
    turns: list[Turn] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *turns: Turn | str) -> None:
        self.turns.extend(t if isinstance(t, Turn) else text(t) for t in turns)

    def start(self) -> ToolCallingLLM:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                owner.requests.append(body)
                turn = owner.turns.pop(0) if owner.turns else Turn(status=500, content="nothing scripted")
                if turn.status != 200:
                    payload = {"error": {"message": turn.content or "error", "type": "invalid_request_error"}}
                else:
                    message: dict[str, Any] = {"role": "assistant", "content": turn.content}
                    if turn.tool_calls:
                        message = {"role": "assistant", "content": None, "tool_calls": [
                            {"id": f"call_{len(owner.requests)}_{i}", "type": "function",
                             "function": {"name": name,
                                          "arguments": args if isinstance(args, str) else json.dumps(args)}}
                            for i, (name, args) in enumerate(turn.tool_calls)]}
                    payload = {"id": "chatcmpl-tools", "object": "chat.completion", "created": int(time.time()),
                               "model": body.get("model", "scripted"),
                               "choices": [{"index": 0, "message": message,
                                            "finish_reason": "tool_calls" if turn.tool_calls else "stop"}],
                               "usage": {"prompt_tokens": turn.prompt_tokens,
                                         "completion_tokens": turn.completion_tokens,
                                         "total_tokens": turn.prompt_tokens + turn.completion_tokens}}
                data = json.dumps(payload).encode()
                self.send_response(turn.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def tool_llm() -> Iterator[ToolCallingLLM]:
    server = ToolCallingLLM().start()
    yield server
    server.stop()
