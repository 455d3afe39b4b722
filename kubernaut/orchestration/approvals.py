"""The approvals API: authenticated principals approve (once each, optionally overriding parameters) or reject a
pending request.

Who may decide in a namespace is the gateway's question (a Permission checked for the principal); this module
checks what only the orchestrator knows: the requester of a remediation cannot approve it, a principal counts
once, and the risk levels in ``orchestration.approvals.two_person_for`` need two distinct approvers (the first
approval is recorded and waits for the second). A rejection by any principal allowed to decide ends it.

The workflow waiting for the decision is woken in the decision's transaction; it uses the approval itself
(``WorkflowEngine``), so a decision never acts on its own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubernaut.models.principal import Principal
from kubernaut.observability import metrics
from kubernaut.orchestration.workflow_job import wake as wake_workflow
from kubernaut.storage import approvals, audit, incidents, notifications
from kubernaut.storage.approvals import ApprovalRecord
from kubernaut.storage.slack import approval_messages as slack_messages

# The actor that proposes every remediation so far (rules, LLM analyses): it can never approve its own.
SYSTEM_REQUESTER = "kubernaut"
_RISK_ORDER = ("low", "medium", "high", "critical")


class ApprovalError(ValueError):
    """A decision that cannot be taken (unknown, already decided, expired, invalid override, refused
    approver). ``reason`` is a short label for the refusal metric."""

    def __init__(self, message: str, status: int = 409, reason: str = "conflict") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class DecisionSource(BaseModel):
    """Where a decision came from, as the gateway saw the request."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    address: str | None = Field(default=None, max_length=256)
    user_agent: str | None = Field(default=None, max_length=512)


def principal_of(principal: Any) -> Principal:
    """The authenticated principal as the gateway passed it (``Principal.model_dump(mode="json")``). A name in
    a request body is not one: anything else is refused (401), never guessed."""
    if isinstance(principal, Principal):
        return principal
    if not isinstance(principal, dict):
        raise ApprovalError("a decision needs an authenticated principal", status=401, reason="unauthenticated")
    try:
        return Principal.model_validate(principal)
    except ValidationError:
        raise ApprovalError("a decision needs an authenticated principal", status=401,
                            reason="unauthenticated") from None


def source_of(source: Any) -> DecisionSource:
    try:
        return DecisionSource.model_validate(source or {})
    except ValidationError:
        return DecisionSource()


def approvers_required(risk: str, two_person_for: list[str]) -> int:
    """2 when ``risk`` is at or above a level listed in ``orchestration.approvals.two_person_for``."""
    if not two_person_for:
        return 1
    if risk not in _RISK_ORDER:
        return 2  # a risk this rule does not know is judged the highest (fail closed)
    lowest = min(_RISK_ORDER.index(level) for level in two_person_for)
    return 2 if _RISK_ORDER.index(risk) >= lowest else 1


def check_open(pending: ApprovalRecord | None, approval_id: int, now: datetime | None = None) -> ApprovalRecord:
    if pending is None:
        raise ApprovalError(f"approval {approval_id} not found", status=404, reason="not_found")
    if pending.status != "pending":
        raise ApprovalError(f"approval {approval_id} is already {pending.status}", reason="already_decided")
    if pending.expires_at <= (now or datetime.now(timezone.utc)):
        raise ApprovalError(f"approval {approval_id} expired at {pending.expires_at:%Y-%m-%d %H:%M:%S} UTC",
                            reason="expired")
    return pending


def check_approver(pending: ApprovalRecord, principal: Principal) -> None:
    """May this principal's approval count? Not the requester's, and each principal counts once."""
    if pending.requested_by in (principal.name, principal.actor):
        raise ApprovalError(f"approval {pending.id}: {principal.actor} requested this remediation and cannot "
                            "approve it", status=403, reason="self_approval")
    if any(v.approve and v.actor == principal.actor for v in pending.votes):
        raise ApprovalError(f"approval {pending.id}: {principal.actor} already approved it; a second, distinct "
                            "approver is needed", status=403, reason="same_approver")


def held_override(pending: ApprovalRecord, override: dict[str, Any] | None) -> dict[str, Any] | None:
    """The override this approval stands for: a later approver of a two-person approval approves the first
    approver's override as it is (or rejects it), so both approved the same plan."""
    if not any(v.approve for v in pending.votes):
        return override or None
    held = pending.override_parameters
    if override and override != held:
        plan = f"with the override {held}" if held else "without an override"
        raise ApprovalError(f"approval {pending.id} was approved {plan}: approve it as it is or reject it",
                            status=409, reason="override_mismatch")
    return held


async def commit(pool: asyncpg.Pool, approval_id: int, approve: bool, principal: Principal,
                 source: DecisionSource, reason: str | None, override: dict[str, Any] | None, *,
                 required: int, checked: dict[str, Any] | None = None) -> ApprovalRecord:
    """Record one principal's decision. The approval is locked and every rule checked again, so two
    decisions racing cannot both count; ``override`` is the one the caller checked (policy and dry-run)
    and ``checked`` what that check found. An approval that reaches ``required`` distinct approvers (or any
    rejection) is decided and wakes its workflow; a first approval of two is recorded and waits."""
    checked = checked or {}
    async with pool.acquire() as conn, conn.transaction():
        pending = check_open(await approvals.for_decision(conn, approval_id), approval_id)
        roles = sorted(r.value for r in principal.roles)
        who = {"actor": principal.actor, "method": principal.method, "roles": roles,
               "address": source.address, "user_agent": source.user_agent}
        if approve:
            check_approver(pending, principal)
            if held_override(pending, override) != (override or None):
                raise ApprovalError(f"approval {approval_id} changed while it was being checked; try again")
            required = max(required, pending.approvals_required)
        elif override:
            raise ApprovalError("override: a rejection cannot carry a parameter override", status=422,
                                reason="invalid_override")
        await approvals.record_vote(conn, approval_id, approve=approve, actor=principal.actor,
                                    method=principal.method, roles=roles, address=source.address,
                                    user_agent=source.user_agent, reason=reason, override=override or None,
                                    dry_run_action_id=checked.get("dry_run_action_id"))
        approvers = [v.actor for v in pending.votes if v.approve] + ([principal.actor] if approve else [])
        detail = {"approval_id": approval_id, "workflow_id": pending.workflow_id, "reason": reason,
                  "override": override or None, "principal": who, "approvers": approvers,
                  "approvals_required": required, **checked}
        if approve and len(approvers) < required:
            await approvals.hold_override(conn, approval_id, override or None)
            await audit.append(conn, principal.actor, "approval.approved_pending_second", pending.incident_id,
                               detail)
            return await approvals.get(conn, approval_id)  # type: ignore[return-value]
        status = "approved" if approve else "rejected"
        decided = await approvals.decide(conn, approval_id, status=status, by=principal.actor, reason=reason,
                                         override=override or None, method=principal.method, roles=roles,
                                         address=source.address, user_agent=source.user_agent)
        await audit.append(conn, principal.actor, f"approval.{status}", pending.incident_id, detail)
        cluster = await incidents.cluster_of(conn, pending.incident_id)
        if await slack_messages(conn, approval_id):
            # Wherever it was decided (REST, console, Slack), the Slack messages that asked for it show the outcome.
            await notifications.create(conn, pending.incident_id, "approval.decided",
                                       title=f"[kubernaut] approval {approval_id} {status} by {principal.actor}",
                                       body=f"{pending.action} on {pending.target}: {status} by {principal.actor}"
                                            + (f" ({reason})" if reason else ""),
                                       severity="info", approval_id=approval_id)
        await wake_workflow(conn, pending.workflow_id)
    metrics.approval_decided(status, cluster)
    return decided


async def record_refusal(pool: asyncpg.Pool, approval_id: int, principal: Principal | None, source: DecisionSource,
                         error: ApprovalError, approve: bool) -> None:
    """Every refused decision is audited (who, from where, why) and counted."""
    metrics.approval_refused(error.reason)
    refused = await approvals.get(pool, approval_id)
    incident_id = refused.incident_id if refused is not None else None
    async with pool.acquire() as conn, conn.transaction():
        await audit.append(conn, principal.actor if principal else "unauthenticated", "approval.refused",
                           incident_id, {
                               "approval_id": approval_id, "decision": "approve" if approve else "reject",
                               "reason": str(error), "refusal": error.reason, "status": error.status,
                               "principal": None if principal is None else {
                                   "method": principal.method, "roles": sorted(r.value for r in principal.roles)},
                               "address": source.address, "user_agent": source.user_agent})


async def expire_due(pool: asyncpg.Pool) -> list[int]:
    """Workflows whose approval expired: wake them so they escalate now rather than at the next poll."""
    due = await approvals.expired_pending_workflows(pool)
    for workflow_id in due:
        await wake_workflow(pool, workflow_id)
    return due
