"""The webhook fast path: only POSTs to the webhook paths (under any root path) skip FastAPI's router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kubernaut.gateway.fastpath import WebhookFastPath


@pytest.fixture
def fast() -> Iterator[tuple[WebhookFastPath, list[str]]]:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(f"router {scope['method']} {scope['path']}")
        await Response("routed")(scope, receive, send)

    async def handler(request: Request) -> Response:
        seen.append(f"fast {request.url.path}")
        return JSONResponse({"accepted": 1})

    WebhookFastPath.handler = handler
    yield WebhookFastPath(app), seen
    WebhookFastPath.handler = None


async def call(middleware: WebhookFastPath, method: str, path: str, root_path: str = "") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": root_path, "headers": [],
             "query_string": b"", "scheme": "http", "server": ("127.0.0.1", 80)}
    await middleware(scope, receive, send)
    return sent


@pytest.mark.parametrize(("method", "path", "root", "expected"), [
    ("POST", "/api/v1/alerts", "", "fast"),
    ("POST", "/alerts", "", "fast"),
    ("POST", "/learn/api/v1/alerts", "/learn", "fast"),
    ("GET", "/api/v1/alerts", "", "router"),
    ("POST", "/api/v1/alerts/extra", "", "router"),
    ("POST", "/api/v1/analyze", "", "router"),
])
async def test_only_webhook_posts_take_the_fast_path(fast: tuple[WebhookFastPath, list[str]], method: str,
                                                    path: str, root: str, expected: str) -> None:
    middleware, seen = fast
    sent = await call(middleware, method, path, root)
    assert seen[0].startswith(expected) and sent[0]["status"] == 200


async def test_without_a_ready_replica_everything_goes_to_the_router(fast: tuple[WebhookFastPath, list[str]]) -> None:
    middleware, seen = fast
    WebhookFastPath.handler = None
    await call(middleware, "POST", "/api/v1/alerts")
    assert seen == ["router POST /api/v1/alerts"]
