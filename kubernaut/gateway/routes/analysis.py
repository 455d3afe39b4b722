"""Analysis without acting (``/api/v1/analyze``) and the context of a resource."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from kubernaut.gateway.clusters import unknown_alert_cluster, unknown_cluster
from kubernaut.gateway.errors import problem
from kubernaut.gateway.ingest import request_id_of, sender_of
from kubernaut.gateway.services import Services, requires
from kubernaut.gateway.webhook import WEBHOOK_BODY_DOC, Refusal, parse_webhook
from kubernaut.models.resource import ResourceRef

router = APIRouter()

CreateAnalyses = requires("create", "analyses")
GetContexts = requires("get", "contexts")


@router.post("/api/v1/analyze", openapi_extra=WEBHOOK_BODY_DOC, summary="Analyze alerts without acting")
async def analyze(request: Request, svc: Services, caller: CreateAnalyses) -> JSONResponse:
    """The webhook's limits (size, nesting, alerts, labels), and at most ``analyze_max_alerts`` alerts: an
    analysis is work per target (an LLM call each), so a body above the limit is refused, not truncated."""
    request_id = request_id_of(request)
    gateway_cfg = svc.config.gateway
    wait = svc.analyze_limiter.acquire(sender_of(request, caller, gateway_cfg))
    if wait > 0:
        return problem(429, "rate limit exceeded for this sender", request_id, retry_after=wait)
    parsed = await parse_webhook(
        request, gateway_cfg, request_id,
        max_alerts=min(gateway_cfg.analyze_max_alerts, gateway_cfg.max_alerts_per_request), truncate=False)
    if isinstance(parsed, Refusal):
        return parsed.response
    if (unknown := unknown_alert_cluster(svc.config, parsed.payload.alerts)) is not None:
        field, reason = unknown
        return problem(422, f"{field}: {reason}", request_id, field=field)
    analyses = await svc.deployments.analysis.analyze_payload.remote(
        parsed.payload.model_dump(mode="json", by_alias=True, exclude_none=True))
    return JSONResponse({"analyses": analyses})


@router.get("/api/v1/context", summary="Live state and incident history of a resource")
async def context(
    request: Request,
    svc: Services,
    caller: GetContexts,
    # Kubernetes grammar, checked here: these go into API paths (a NUL in a name was a 500, found by fuzzing).
    kind: str = Query(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$"),
    name: str = Query(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
    namespace: str | None = Query(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
    second_opinion: bool = Query(default=False, description="also ask HolmesGPT (holmes.url); untrusted text"),
    cluster: str | None = Query(default=None, max_length=63, pattern=r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$",
                                description="which cluster of the fleet (default: the home cluster)"),
) -> JSONResponse:
    if (reason := unknown_cluster(svc.config, cluster)) is not None:
        return problem(404, f"cluster: {reason}", request_id_of(request), field="cluster")
    target = ResourceRef(kind=kind, name=name, namespace=namespace)
    body = await svc.deployments.context.get_context.remote(target, second_opinion=second_opinion, cluster=cluster)
    return JSONResponse(jsonable_encoder(body))
