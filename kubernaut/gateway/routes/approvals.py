"""Approval requests and the decisions of humans."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import GatewayConfig
from kubernaut.gateway.errors import other_actor
from kubernaut.gateway.routes.limits import MAX_ID
from kubernaut.gateway.services import Authenticated, GatewayServices, Services, requires
from kubernaut.models.principal import Permission, Principal
from kubernaut.observability import metrics
from kubernaut.storage import approvals as approval_store
from kubernaut.storage import audit as audit_store

router = APIRouter()

ListApprovals = requires("list", "approvals")


class ApprovalDecision(BaseModel):
    """Why; an override is validated against the action's parameter schema. Who decides is the authenticated
    caller: ``by`` may only repeat its name (older clients send it) and is refused when it names anyone else."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")
    reason: str | None = Field(default=None, max_length=2000)
    override: dict[str, Any] | None = None


@router.get("/api/v1/approvals", summary="Approval requests (pending first by default)")
async def list_approvals(
    request: Request,
    svc: Services,
    caller: ListApprovals,
    status: str | None = Query(default=None, pattern="^(pending|approved|rejected|expired|used|cancelled)$"),
    limit: int = Query(default=100, ge=1, le=1000)
) -> JSONResponse:
    items = await svc.deployments.orchestrator.list_approvals.remote(status, limit)
    return JSONResponse(jsonable_encoder({"items": items}))


@router.post("/api/v1/approvals/{approval_id}/approve", summary="Approve (once), optionally overriding parameters")
async def approve(request: Request, svc: Services, caller: Authenticated, decision: ApprovalDecision,
                  approval_id: int = FastApiPath(ge=1, le=MAX_ID)) -> JSONResponse:
    """Needs ``approve approvals.kubernaut.ai`` in the namespace of the approval's target."""
    return await decide(svc, request, approval_id, True, decision, caller)


@router.post("/api/v1/approvals/{approval_id}/reject", summary="Reject: the workflow ends without acting")
async def reject(request: Request, svc: Services, caller: Authenticated, decision: ApprovalDecision,
                 approval_id: int = FastApiPath(ge=1, le=MAX_ID)) -> JSONResponse:
    """Needs ``approve approvals.kubernaut.ai`` in the namespace of the approval's target, as approving does."""
    return await decide(svc, request, approval_id, False, decision, caller)


async def decide(svc: GatewayServices, request: Request, approval_id: int, approve: bool,
                 decision: ApprovalDecision, caller: Principal) -> JSONResponse:
    """The one decision path of people: this route and the web console (kubernaut/gateway/console) call it."""
    approval = await approval_store.get(svc.db.pool, approval_id)
    if approval is None:
        return JSONResponse({"error": f"approval {approval_id} not found"}, status_code=404)
    source = source_of(request, svc.config.gateway)
    if (forged := other_actor(decision.by, caller)) is not None:
        metrics.auth_denied("forged_by")
        await _audit_refusal(svc, approval, caller, source, approve, 422, "forged_by",
                             f"body.by {decision.by!r} is not the authenticated caller")
        return forged
    # The grant is checked in the namespace of the approval's target (the incident's); no namespace (a
    # cluster-scoped target) needs a cluster-wide grant.
    namespace = approval.target.get("namespace") or None
    permission = Permission(verb="approve", resource="approvals", namespace=namespace,
                            cluster=svc.config.cluster_name)
    try:
        await svc.check(caller, permission)
    except HTTPException as exc:
        if exc.status_code == 403:
            await _audit_refusal(svc, approval, caller, source, approve, 403, "forbidden",
                                 f"needs {permission.describe()}")
        raise
    outcome = await decide_remote(svc.deployments.orchestrator, approval_id, approve, caller, source,
                                  decision.reason, decision.override)
    if "error" in outcome:
        return JSONResponse({"error": outcome["error"]}, status_code=outcome["status"])
    return JSONResponse(jsonable_encoder(outcome))


async def _audit_refusal(svc: GatewayServices, approval: approval_store.ApprovalRecord, caller: Principal,
                         source: dict[str, str | None], approve: bool, status: int, refusal: str, reason: str) -> None:
    """A decision the gateway refused is audited as the orchestrator audits its own refusals (approval.refused):
    who tried, how it authenticated, from where, and why."""
    async with svc.db.pool.acquire() as conn, conn.transaction():
        await audit_store.append(conn, caller.actor, "approval.refused", approval.incident_id, {
            "approval_id": approval.id, "decision": "approve" if approve else "reject", "reason": reason,
            "refusal": refusal, "status": status,
            "principal": {"method": caller.method, "roles": sorted(r.value for r in caller.roles)},
            "address": source["address"], "user_agent": source["user_agent"]})


def source_of(request: Request, config: GatewayConfig) -> dict[str, str | None]:
    """Where a decision came from, for the audit trail: client address and user agent (bounded)."""
    address = request.client.host if request.client else None
    if config.trust_forwarded_for and request.headers.get("x-forwarded-for"):
        address = request.headers["x-forwarded-for"].split(",")[0].strip()
    agent = request.headers.get("user-agent")
    return {"address": (address or "")[:100] or None, "user_agent": agent[:256] if agent else None}


def principal_record(principal: Principal) -> dict[str, Any]:
    """The principal as the orchestrator receives it: ``Principal.model_dump(mode="json")`` plus its actor."""
    return {**principal.model_dump(mode="json"), "actor": principal.actor}


async def decide_remote(orchestrator: DeploymentHandle, approval_id: int, approve: bool, caller: Principal,
                        source: dict[str, str | None], reason: str | None,
                        override: dict[str, Any] | None) -> dict[str, Any]:
    """``WorkflowOrchestrator.decide``: it re-checks who may decide (self-approval, two-person rule) and audits
    the principal with its source; the gateway has checked the namespace grant."""
    return await orchestrator.decide.remote(approval_id, approve, principal_record(caller), reason, override,
                                            source)
