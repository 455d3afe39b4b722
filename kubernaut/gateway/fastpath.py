"""The webhook's hot path around FastAPI's router.

AlertManager's POST is the one request that comes thousands of times a second; routing it through
FastAPI's router, dependency solving and response wrappers costs more than validating and committing
it. This ASGI middleware hands it straight to the gateway's handler (the same code the FastAPI route
calls, so behaviour and the OpenAPI document are unchanged); every other request goes the normal way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

WEBHOOK_PATHS = frozenset({"/api/v1/alerts", "/alerts"})

Handler = Callable[[Request], Awaitable[Response]]


class WebhookFastPath:
    handler: Handler | None = None  # set by the gateway replica once it is ready (one per process)

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        handler = WebhookFastPath.handler
        if handler is not None and scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path") or ""
            if root and path.startswith(root):
                path = path[len(root):]
            if path in WEBHOOK_PATHS:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
