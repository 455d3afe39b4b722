"""HolmesGPT's HTTP API (``POST /api/investigate``) on loopback, for tests of the second-opinion path."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.sinks import free_port

TOKEN = "holmes-test-token"


def realistic_answer(analysis: str | None = None) -> dict[str, Any]:
    """Shaped like holmes.core.models.InvestigationResult with include_tool_calls=True."""
    return {
        "analysis": analysis if analysis is not None else (
            "# Root cause\nThe `web` container exits with code 137: **OOMKilled** at the 256Mi limit.\n\n"
            "# Fix\nRaise the memory limit of deployment/web."),
        "sections": None,
        "tool_calls": [
            {"tool_call_id": "call_1", "tool_name": "kubectl_describe", "description": "kubectl describe pod web-1",
             "result": {"status": "success", "data": None}},
            {"tool_call_id": "call_2", "tool_name": "fetch_pod_logs", "description": "logs web-1",
             "result": {"status": "success", "data": None}},
        ],
        "instructions": [],
        "metadata": {},
    }


class HolmesPeer:
    """HolmesGPT's HTTP API on loopback: records requests, checks the bearer token, answers as told."""

    def __init__(self, token: str | None = TOKEN) -> None:
        self.token = token
        self.requests: list[dict[str, Any]] = []
        self.mode = "ok"  # ok | hang | bad_json | list_json | status
        self.status = 200
        self.answer: dict[str, Any] = realistic_answer()
        self.release = threading.Event()  # ends a "hang" (set on stop, never used to synchronize the test)
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                peer.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                if self.path != "/api/investigate":
                    return self._reply(404, b'{"detail": "Not Found"}')
                if peer.token and self.headers.get("Authorization") != f"Bearer {peer.token}":
                    return self._reply(401, b'{"detail": "Unauthorized"}')
                if peer.mode == "hang":
                    peer.release.wait(30)
                    return self._reply(200, json.dumps(peer.answer).encode())
                if peer.mode == "bad_json":
                    return self._reply(200, b"<html>upstream proxy error</html>")
                if peer.mode == "list_json":
                    return self._reply(200, b'["not", "an", "object"]')
                if peer.mode == "status":
                    return self._reply(peer.status, b'{"detail": "boom"}')
                return self._reply(200, json.dumps(peer.answer).encode())

            def _reply(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HolmesPeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
