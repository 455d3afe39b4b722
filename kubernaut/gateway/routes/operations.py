"""Liveness, readiness, version and configuration, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from kubernaut import __version__
from kubernaut.gateway import metrics as gateway_metrics
from kubernaut.gateway.services import Services

router = APIRouter()


@router.get("/health", summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: storage reachable")
async def ready(svc: Services) -> JSONResponse:
    storage_ok = await svc.db.ping()
    body: dict[str, Any] = {"ready": storage_ok, "storage": "ok" if storage_ok else "unreachable"}
    try:
        # An open LLM circuit degrades the analysis (the rules decide) but does not make us unready.
        body["analysis"] = await asyncio.wait_for(svc.deployments.analysis.llm_status.remote(), timeout=2)
    except Exception as exc:
        body["analysis"] = {"error": type(exc).__name__}
    return JSONResponse(jsonable_encoder(body), status_code=200 if storage_ok else 503)


@router.get("/api/v1/info", summary="Version, configuration summary and execution mode")
async def info(request: Request, svc: Services) -> JSONResponse:
    svc.authorize(request)
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
        "gateway": {"auth": svc.auth.enabled, "max_body_bytes": cfg.gateway.max_body_bytes},
        "notifications": {"urls": len(cfg.notifications.urls)},
    }))


@router.get("/metrics", summary="Prometheus metrics of this gateway replica", include_in_schema=False)
async def metrics() -> PlainTextResponse:
    return PlainTextResponse(gateway_metrics.render().decode(), media_type=CONTENT_TYPE_LATEST)
