"""``POST /api/v1/alerts``: the AlertManager webhook (the fast path calls the same handler)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services
from kubernaut.gateway.webhook import WEBHOOK_BODY_DOC

router = APIRouter()


@router.post("/api/v1/alerts", openapi_extra=WEBHOOK_BODY_DOC, summary="AlertManager webhook (v4)")
async def receive_alerts(request: Request, svc: Services) -> JSONResponse:
    return await svc.ingest.receive(request)


@router.post("/alerts", openapi_extra=WEBHOOK_BODY_DOC, include_in_schema=False)
async def receive_alerts_alias(request: Request, svc: Services) -> JSONResponse:
    return await svc.ingest.receive(request)
