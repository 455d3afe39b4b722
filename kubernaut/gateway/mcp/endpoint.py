"""``/mcp``: the MCP SDK's streamable HTTP transport inside the gateway's FastAPI app, behind its authentication.

Each request is authenticated by the gateway's chain before the SDK sees it (401 without valid credentials, 503
when the authority cannot be reached), and the principal is handed to the tools for the request's duration
(:data:`kubernaut.gateway.mcp.tools.CALLER`); each tool then checks its own permission.

The transport is stateless with JSON answers: Serve routes each request to any gateway replica, so no request may
depend on a session held by another. The SDK's session manager needs its task group running before the first
request: the replica builds it in ``Gateway.__init__`` (:meth:`McpEndpoint.install`) and Serve then runs the app's
lifespan (:meth:`McpEndpoint.lifespan`) on the same event loop, which keeps it running until the replica stops.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import HTTPException
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway import services as gateway_services
from kubernaut.gateway.mcp.tools import CALLER, Caller, build_server
from kubernaut.identity.chain import AuthChain, Denied

logger = logging.getLogger("kubernaut.gateway.mcp")

PATH = "/mcp"

# Without authentication the gateway serves loopback only and every caller is the anonymous admin: a web page
# could then reach /mcp through DNS rebinding, so only loopback Host and Origin headers are accepted (the SDK's
# own protection). With authentication, a request without the bearer token is refused anyway.
LOOPBACK_ONLY = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
# Said explicitly: left unset, the SDK protects as if it served 127.0.0.1 and refuses a cluster's Host names.
ANY_HOST = TransportSecuritySettings(enable_dns_rebinding_protection=False)


# This process's session manager (one gateway replica per process). A module global, not the endpoint's state:
# @serve.ingress freezes the app by a cloudpickle round trip, so the endpoint object the app routes to (and whose
# lifespan it runs) is a copy of the one this module holds; the copy's class still reads this module.
_manager: StreamableHTTPSessionManager | None = None


class McpEndpoint:
    """The ASGI app at ``/mcp``."""

    def install(self, config: KubernautConfig, auth: AuthChain) -> None:
        """Build this replica's MCP server (none when ``mcp.enabled`` is false: ``/mcp`` answers 404)."""
        global _manager
        _manager = None
        if not config.mcp.enabled:
            return
        server = build_server(config)
        server.streamable_http_app(
            stateless_http=True, json_response=True, max_request_body_size=config.gateway.max_body_bytes,
            transport_security=LOOPBACK_ONLY if auth.anonymous is not None else ANY_HOST)
        _manager = server.session_manager

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        manager = _manager
        if manager is None:
            yield
            return
        async with manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            svc = gateway_services.services()
        except HTTPException as exc:  # the replica is still starting
            await JSONResponse({"error": exc.detail}, status_code=exc.status_code)(scope, receive, send)
            return
        manager = _manager
        if manager is None:
            await JSONResponse({"error": "the MCP server is disabled (mcp.enabled)"}, status_code=404)(
                scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal = await svc.auth.authenticate(request.headers.get("authorization"))
        except Denied as exc:
            await JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)(
                scope, receive, send)
            return
        token = CALLER.set(Caller(principal=principal, request=request))
        try:
            await manager.handle_request(scope, receive, send)
        finally:
            CALLER.reset(token)


#: The endpoint of this process, mounted on the gateway's app (kubernaut.gateway.deployment).
endpoint = McpEndpoint()
