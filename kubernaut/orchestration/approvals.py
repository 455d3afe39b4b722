"""The approvals API: a human approves (once, optionally overriding parameters) or rejects a pending request.

The workflow waiting for the decision is woken in the decision's transaction; it uses the approval itself
(``WorkflowEngine``), so a decision never acts on its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg

from kubernaut.execution.catalog import CatalogError, validate_request
from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.workflow_job import wake as wake_workflow
from kubernaut.storage import approvals, audit
from kubernaut.storage.approvals import ApprovalRecord


class ApprovalError(ValueError):
    """A decision that cannot be taken (unknown, already decided, expired, invalid override)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


async def decide(pool: asyncpg.Pool, approval_id: int, approve: bool, by: str, reason: str | None,
                 override: dict[str, Any] | None) -> ApprovalRecord:
    async with pool.acquire() as conn, conn.transaction():
        pending = await approvals.for_decision(conn, approval_id)
        if pending is None:
            raise ApprovalError(f"approval {approval_id} not found", status=404)
        if pending.status != "pending":
            raise ApprovalError(f"approval {approval_id} is already {pending.status}")
        if pending.expires_at <= datetime.now(timezone.utc):
            raise ApprovalError(f"approval {approval_id} expired at {pending.expires_at:%Y-%m-%d %H:%M:%S} UTC")
        if override and not approve:
            raise ApprovalError("a rejection cannot carry a parameter override", status=422)
        if override:
            try:
                validate_request(pending.action, ResourceRef.model_validate(pending.target),
                                 {**pending.parameters, **override})
            except CatalogError as exc:
                raise ApprovalError(f"override refused: {exc}", status=422) from None
        status = "approved" if approve else "rejected"
        decided = await approvals.decide(conn, approval_id, status=status, by=by, reason=reason,
                                         override=override or None)
        await audit.append(conn, by, f"approval.{status}", pending.incident_id, {
            "approval_id": approval_id, "workflow_id": pending.workflow_id, "reason": reason,
            "override": override or None})
        await wake_workflow(conn, pending.workflow_id)
    return decided


async def expire_due(pool: asyncpg.Pool) -> list[int]:
    """Workflows whose approval expired: wake them so they escalate now rather than at the next poll."""
    due = await approvals.expired_pending_workflows(pool)
    for workflow_id in due:
        await wake_workflow(pool, workflow_id)
    return due
