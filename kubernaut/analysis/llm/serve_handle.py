"""The `serve_handle` provider: the co-deployed `llm` Serve app reached through a DeploymentHandle, not HTTP.

The openai SDK still builds every request and parses every answer (so output modes, errors and usage are
exactly the HTTP path's); only the transport differs: an httpx2 (the SDK's HTTP client) transport hands the
chat request body to the
`llm` app's ingress (``kubernaut/llm_handle.py``, method ``chat_json``) in the same Ray cluster and turns its
(status, body) back into a response. No proxy hop, no port, no route_prefix to configure — only the app name.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

# A base URL the SDK needs but nothing resolves: every request goes through the transport below.
HANDLE_BASE_URL = "http://serve-handle.invalid/v1"


class ServeHandleTransport(httpx2.AsyncBaseTransport):
    """POST /chat/completions → ``chat_json`` on the app's ingress; GET /models → the app's model listing."""

    def __init__(self, app_name: str) -> None:
        self.app_name = app_name
        self._handle: Any = None

    def _ingress(self) -> Any:
        if self._handle is None:
            from ray import serve  # the analysis deployment runs inside Ray; keep the import out of fast paths

            self._handle = serve.get_app_handle(self.app_name)
        return self._handle

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        try:
            if request.method == "POST" and path.endswith("/chat/completions"):
                body = json.loads(await request.aread())
                status, answer = await self._ingress().chat_json.remote(body)
            elif request.method == "GET" and path.endswith("/models"):
                status, answer = 200, await self._ingress().models_json.remote()
            else:
                status, answer = 404, {"error": {"message": f"{request.method} {path} is not served by the handle"}}
        except Exception as exc:
            # App missing, replica dead, handle call failed: a connection failure to the SDK (counts against the
            # breaker like a server that does not answer).
            raise httpx2.ConnectError(f"serve handle {self.app_name!r}: {type(exc).__name__}: {exc}"[:500],
                                     request=request) from None
        return httpx2.Response(int(status), json=answer, request=request)
