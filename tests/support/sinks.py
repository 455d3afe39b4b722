"""Real local peers for notifications: an HTTP receiver (apprise json://) and an SMTP server (mailto://)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HttpSink:
    """Collects JSON bodies POSTed to it; can be told to fail to exercise retries."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        self.refused = 0  # requests answered 500 because of fail_next: proof that a failure was seen
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                if sink.fail_next > 0:
                    sink.fail_next -= 1
                    sink.refused += 1
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    sink.received.append(json.loads(body))
                except ValueError:
                    sink.received.append({"raw": body.decode(errors="replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/notify"

    def start(self) -> HttpSink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SmtpSink:
    """aiosmtpd on loopback: apprise mailto:// delivers real SMTP here."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Message

        self.messages: list[Any] = []
        sink = self

        class Collect(Message):
            def handle_message(self, message: Any) -> None:
                sink.messages.append(message)

        self.port = free_port()
        self._controller = Controller(Collect(), hostname="127.0.0.1", port=self.port)

    @property
    def apprise_url(self) -> str:
        return (f"mailto://127.0.0.1:{self.port}?from=kubernaut@example.org&to=oncall@example.org"
                "&mode=insecure")

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
