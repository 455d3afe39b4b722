"""Approval requests and the decisions of humans."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as FastApiPath
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kubernaut.gateway.routes.limits import MAX_ID
from kubernaut.gateway.services import GatewayServices, Services

router = APIRouter()


class ApprovalDecision(BaseModel):
    """Who decides and why; an override is validated against the action's parameter schema."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    reason: str | None = Field(default=None, max_length=2000)
    override: dict[str, Any] | None = None


@router.get("/api/v1/approvals", summary="Approval requests (pending first by default)")
async def list_approvals(
    request: Request,
    svc: Services,
    status: str | None = Query(default=None, pattern="^(pending|approved|rejected|expired|used|cancelled)$"),
    limit: int = Query(default=100, ge=1, le=1000)
) -> JSONResponse:
    svc.authorize(request)
    items = await svc.deployments.orchestrator.list_approvals.remote(status, limit)
    return JSONResponse(jsonable_encoder({"items": items}))


@router.post("/api/v1/approvals/{approval_id}/approve", summary="Approve (once), optionally overriding parameters")
async def approve(request: Request, svc: Services, decision: ApprovalDecision,
                  approval_id: int = FastApiPath(ge=1, le=MAX_ID)) -> JSONResponse:
    return await _decide(svc, request, approval_id, True, decision)


@router.post("/api/v1/approvals/{approval_id}/reject", summary="Reject: the workflow ends without acting")
async def reject(request: Request, svc: Services, decision: ApprovalDecision,
                 approval_id: int = FastApiPath(ge=1, le=MAX_ID)) -> JSONResponse:
    return await _decide(svc, request, approval_id, False, decision)


async def _decide(svc: GatewayServices, request: Request, approval_id: int, approve: bool,
                  decision: ApprovalDecision) -> JSONResponse:
    svc.authorize(request)
    outcome = await svc.deployments.orchestrator.decide.remote(approval_id, approve, decision.by, decision.reason,
                                                               decision.override)
    if "error" in outcome:
        return JSONResponse({"error": outcome["error"]}, status_code=outcome["status"])
    return JSONResponse(jsonable_encoder(outcome))
