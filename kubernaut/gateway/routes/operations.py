"""Liveness, readiness, version and configuration, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from kubernaut import __version__
from kubernaut.gateway import metrics as gateway_metrics
from kubernaut.gateway.event_watch import event_watch_info
from kubernaut.gateway.fleet_health import fleet_health
from kubernaut.gateway.services import Services, requires
from kubernaut.identity.chain import Denied
from kubernaut.models.principal import Permission
from kubernaut.storage import notifications as notification_store

router = APIRouter()

GetInfo = requires("get", "info")
GetOpenapi = requires("get", "openapi")


@router.get("/health", summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: storage reachable")
async def ready(request: Request, svc: Services) -> JSONResponse:
    """Open to anyone (probes carry no credentials), so it says only ok/degraded: no URLs, model names, paths or
    error texts (they name hosts); /api/v1/info has the detail for viewers. Notification receivers that keep
    failing add ``notifications: degraded``, and for an admin (``get receivers``) which ones and why."""
    storage_ok = await svc.db.ping()
    body: dict[str, Any] = {"ready": storage_ok, "storage": "ok" if storage_ok else "unreachable"}
    if storage_ok:
        body.update(await notification_health(request, svc))
    try:
        # An open LLM circuit degrades the analysis (the rules decide) but does not make us unready.
        llm = await asyncio.wait_for(svc.deployments.analysis.llm_status.remote(), timeout=2)
        body["analysis"] = "degraded" if llm.get("degraded") else "ok"
    except Exception:
        body["analysis"] = "unknown"
    body.update(await fleet_health(svc, request.headers.get("authorization")))  # a fleet: each cluster's circuit
    return JSONResponse(body, status_code=200 if storage_ok else 503)


async def notification_health(request: Request, svc: Services) -> dict[str, Any]:
    failing = await notification_store.failing_receivers(svc.db.pool,
                                                         svc.config.notifications.receiver_health.failing_after)
    if not failing:
        return {}
    try:
        await svc.auth.require(request.headers.get("authorization"), Permission(verb="get", resource="receivers"))
    except Denied:
        return {"notifications": "degraded"}
    return {"notifications": "degraded", "detail": {"failing_receivers": [
        {"receiver": r.receiver, "failures_in_a_row": r.consecutive_failures, "last_error": r.last_error,
         "last_failure_at": r.last_failure_at.isoformat() if r.last_failure_at else None,
         "last_success_at": r.last_success_at.isoformat() if r.last_success_at else None} for r in failing]}}


@router.get("/api/v1/info", summary="Version, configuration summary and execution mode")
async def info(request: Request, svc: Services, caller: GetInfo) -> JSONResponse:
    try:
        executor = await asyncio.wait_for(svc.deployments.executor.status.remote(), timeout=5)
    except Exception as exc:
        executor = {"error": type(exc).__name__}
    try:
        analysis = await asyncio.wait_for(svc.deployments.analysis.llm_status.remote(), timeout=5)
    except Exception as exc:
        analysis = {"error": type(exc).__name__}
    cfg = svc.config
    return JSONResponse(jsonable_encoder({
        "name": "kubernaut",
        "version": __version__,
        "cluster_name": cfg.cluster_name,
        "dry_run": cfg.dry_run,
        "execution_mode": cfg.execution.mode.value,
        "executor": executor,
        "storage": {"kind": svc.db.dsn_kind,
                    "data_dir": str(cfg.storage.data_dir) if svc.db.dsn_kind == "embedded" else None},
        "analysis": analysis,
        "gateway": {"auth": {"methods": list(svc.auth.methods), "anonymous": svc.auth.anonymous is not None,
                             "allow_anonymous": cfg.gateway.allow_anonymous},
                    "caller": {"name": caller.name, "method": caller.method,
                               "roles": sorted(role.value for role in caller.roles)},
                    "max_body_bytes": cfg.gateway.max_body_bytes},
        "notifications": {"urls": len(cfg.notifications.urls)},
        # processing.events: each cluster's watch owner (admins only)
        **(await event_watch_info(svc, request.headers.get("authorization"))),
    }))


@router.get("/metrics", summary="Prometheus metrics of this gateway replica", include_in_schema=False)
async def metrics() -> PlainTextResponse:
    return PlainTextResponse(gateway_metrics.render().decode(), media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, svc: Services, caller: GetOpenapi) -> JSONResponse:
    """The API's description needs viewer: it lists every route an attacker could try."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False)
async def docs(svc: Services, caller: GetOpenapi) -> HTMLResponse:
    """Swagger UI (needs viewer; it fetches /openapi.json, which needs the same credentials)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Kubernaut API")
