"""A local HTTP peer standing in for Slack's Web API (slack.com/api/<method>): what Kubernaut's slack_sdk client
sends is recorded, and answered as Slack answers (``{"ok": true, ...}``; ``invalid_auth`` for a wrong bot token).
Point ``notifications.slack.api_url`` at :attr:`SlackPeer.api_url`.

Also signs interaction payloads the way Slack does (``v0:<timestamp>:<body>``, HMAC-SHA256 with the signing
secret), so tests press buttons on the real endpoint."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.support.sinks import free_port


@dataclass
class SlackCall:
    method: str
    args: dict[str, Any]
    token: str | None


@dataclass
class SlackPeer:
    bot_token: str
    emails: dict[str, str] = field(default_factory=dict)  # user id → e-mail (users.info)
    calls: list[SlackCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def of(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def _answer(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        if token != self.bot_token:
            return {"ok": False, "error": "invalid_auth"}
        if method == "chat.postMessage":
            # Slack answers with the channel's id and the message's ts (seconds.micro, unique per channel).
            return {"ok": True, "channel": f"C{abs(hash(args.get('channel'))) % 10**8:08d}",
                    "ts": f"{int(time.time())}.{next(self._ts):06d}", "message": {"text": args.get("text")}}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{int(time.time())}.{next(self._ts):06d}"}
        if method == "users.info":
            user = str(args.get("user"))
            if user not in self.emails:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": user, "profile": {"email": self.emails[user]}}}
        return {"ok": False, "error": "unknown_method"}

    def start(self) -> SlackPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                path, _, query = self.path.partition("?")
                method = path.rsplit("/", 1)[-1]
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                if "json" in (self.headers.get("content-type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw).items()}
                args.update({k: v[0] for k, v in parse_qs(query).items()})
                auth = self.headers.get("authorization") or ""
                token = auth[len("Bearer "):] if auth.startswith("Bearer ") else args.get("token")
                with peer._lock:
                    peer.calls.append(SlackCall(method, args, token))
                    answer = peer._answer(method, args, token)
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # slack_sdk sends some read methods (users.info) as GET

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def signed_interaction(secret: str, payload: dict[str, Any], timestamp: int | None = None
                       ) -> tuple[bytes, dict[str, str]]:
    """A block_actions request as Slack sends it: form-encoded ``payload`` and the v0 signature headers."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/x-www-form-urlencoded", "x-slack-request-timestamp": ts,
                  "x-slack-signature": f"v0={digest}"}


def button_press(approval_id: int, user_id: str, *, approve: bool = True, channel: str = "C00000001",
                 message_ts: str = "1.000001") -> dict[str, Any]:
    return {"type": "block_actions", "user": {"id": user_id, "username": user_id.lower()},
            "channel": {"id": channel}, "container": {"type": "message", "message_ts": message_ts,
                                                      "channel_id": channel},
            "actions": [{"action_id": "kubernaut_approve" if approve else "kubernaut_reject",
                         "value": str(approval_id), "type": "button"}]}
