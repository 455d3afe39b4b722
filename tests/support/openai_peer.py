"""A local peer speaking the OpenAI chat-completions protocol over real HTTP, for the real ``openai`` client: it
records every request body and answers what a subclass says (``answer``). Scripted peers build on it:
tests/plugins/llm_server.py (ScriptedLLM) and tests/support/tool_calling_llm.py (ToolCallingLLM)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tests.support.sinks import free_port


@dataclass
class Answer:
    """An HTTP answer: a JSON body, its status, and a delay before it is sent."""

    payload: dict[str, Any]
    status: int = 200
    delay_s: float = 0.0


def error(message: str, status: int, kind: str) -> Answer:
    return Answer({"error": {"message": message, "type": kind}}, status)


def completion(body: dict[str, Any], message: dict[str, Any], finish_reason: str, prompt_tokens: int,
               completion_tokens: int, completion_id: str) -> dict[str, Any]:
    """A chat.completion for the request ``body`` (its model) with one choice, ``message``, and its usage."""
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


@dataclass
class OpenAIPeer:
    port: int = field(default_factory=free_port)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, body: dict[str, Any]) -> Answer:
        raise NotImplementedError

    def start(self) -> Self:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                owner.requests.append(body)
                answer = owner.answer(body)
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                data = json.dumps(answer.payload).encode()
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (a timeout test)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
