"""Gateway: the only HTTP ingress, as a Serve deployment.

The replica connects to storage, builds the webhook ingest and installs the services the routes use; the
routes themselves are in :mod:`kubernaut.gateway.routes` (one module per resource), the webhook's path in
:mod:`kubernaut.gateway.ingest` and its parsing in :mod:`kubernaut.gateway.webhook`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.routing import Route

from kubernaut import __version__
from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.client import connect as connect_cluster
from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway import services as gateway_services
from kubernaut.gateway.console import ROUTERS as CONSOLE_ROUTERS
from kubernaut.gateway.errors import invalid_request
from kubernaut.gateway.fastpath import WebhookFastPath
from kubernaut.gateway.ingest import COMMIT_SLOTS, WebhookIngest
from kubernaut.gateway.mcp.endpoint import PATH as MCP_PATH
from kubernaut.gateway.mcp.endpoint import endpoint as mcp_endpoint
from kubernaut.gateway.query_guard import QueryGuard
from kubernaut.gateway.ratelimit import RateLimiter
from kubernaut.gateway.routes import ROUTERS
from kubernaut.gateway.services import Deployments, GatewayServices
from kubernaut.identity.chain import build_chain
from kubernaut.observability.logs import configure_logging
from kubernaut.storage.database import Database

API_DESCRIPTION = """Kubernaut turns AlertManager alerts about Kubernetes workloads into safe, verified
remediations. Point an AlertManager `webhook_configs` receiver at `POST /api/v1/alerts`."""

# /docs and /openapi.json are routes of their own (kubernaut.gateway.routes.operations) that need viewer.
app = FastAPI(title="Kubernaut", version=__version__, description=API_DESCRIPTION, docs_url=None, redoc_url=None,
              openapi_url=None, lifespan=mcp_endpoint.lifespan)  # the lifespan runs the MCP SDK's task group
app.add_middleware(WebhookFastPath)
app.add_middleware(QueryGuard)  # outermost: a NUL never reaches a route (query_guard.py)
app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
for _router in (*ROUTERS, *CONSOLE_ROUTERS):  # the REST API, then the web console (issue 13)
    app.include_router(_router)
app.router.routes.append(Route(MCP_PATH, mcp_endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False))


@serve.deployment(name="gateway")
@serve.ingress(app)
class Gateway:
    async def __init__(
        self,
        config: KubernautConfig,
        processor: DeploymentHandle,
        analysis: DeploymentHandle,
        executor: DeploymentHandle,
        context: DeploymentHandle,
        intelligence: DeploymentHandle,
        effectiveness: DeploymentHandle,
        orchestrator: DeploymentHandle,
    ) -> None:
        configure_logging(config.log_level)
        gateway_cfg = config.gateway
        # Before anything else: a gateway that must not serve (no authentication off loopback) fails its start
        # with the reason, and Serve reports the deployment unhealthy (kubernaut.identity.chain).
        cluster, cluster_unavailable = None, None
        if gateway_cfg.kubernetes.enabled:
            connection = connect_cluster(config.kubernetes)
            cluster = ClusterAPI(connection.api_client) if connection.api_client is not None else None
            cluster_unavailable = connection.reason
        auth = build_chain(gateway_cfg, serve_http_host(), cluster, cluster_unavailable, config.cluster_name)
        self.db = await Database.connect(config.storage, application_name="kubernaut-gateway")
        ingest_pool = await self.db.extra_pool(COMMIT_SLOTS, "kubernaut-gateway-ingest")
        ingest = WebhookIngest(gateway_cfg, auth, ingest_pool, processor)
        gateway_services.install(GatewayServices(
            config=config, db=self.db, auth=auth,
            deployments=Deployments(processor=processor, analysis=analysis, executor=executor, context=context,
                                    intelligence=intelligence, effectiveness=effectiveness, orchestrator=orchestrator),
            ingest=ingest,
            analyze_limiter=RateLimiter(gateway_cfg.rate_limit_per_s, gateway_cfg.rate_limit_burst),
        ))
        WebhookFastPath.handler = ingest.receive
        mcp_endpoint.install(config, auth)

    async def check_health(self) -> None:
        if not await self.db.ping():
            raise RuntimeError("gateway: database unreachable")


def serve_http_host() -> str | None:
    """The address Serve's HTTP proxy listens on (``http_options.host``); None when it cannot be told, which
    counts as "not loopback" (fail closed)."""
    try:
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        return client.http_config.host if client is not None else None
    except Exception:
        return None
