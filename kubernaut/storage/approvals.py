"""Approval requests: single use, attributed, expiring."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict


class ApprovalRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    workflow_id: int
    incident_id: int
    status: str
    action: str
    target: dict[str, Any]
    parameters: dict[str, Any]
    reason: str
    dry_run_diff: str | None
    requested_at: datetime
    expires_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    override_parameters: dict[str, Any] | None
    used_at: datetime | None
    requested_by: str = "kubernaut"
    approvals_required: int = 1
    decided_method: str | None = None
    decided_roles: list[str] | None = None
    decided_address: str | None = None
    decided_user_agent: str | None = None
    votes: list[Vote] = []  # every principal's decision, oldest first
    # Its workflow runs in dry-run (execution.dry_run_approvals): a rehearsal, approving it executes nothing.
    rehearsal: bool = False


class Vote(BaseModel):
    """One principal's decision on an approval, as it authenticated and where it came from."""

    model_config = ConfigDict(frozen=True)

    approve: bool
    actor: str
    method: str
    roles: list[str]
    address: str | None = None
    user_agent: str | None = None
    reason: str | None = None
    override: dict[str, Any] | None = None
    dry_run_action_id: int | None = None
    decided_at: datetime


ApprovalRecord.model_rebuild()

# An approval with its votes: one query, so a listing shows who approved a two-person approval so far.
_SELECT = """SELECT a.*, COALESCE((
        SELECT jsonb_agg(jsonb_build_object(
            'approve', d.approve, 'actor', d.actor, 'method', d.method, 'roles', to_jsonb(d.roles),
            'address', d.address, 'user_agent', d.user_agent, 'reason', d.reason, 'override', d.override,
            'dry_run_action_id', d.dry_run_action_id, 'decided_at', d.decided_at) ORDER BY d.id)
        FROM approval_decisions d WHERE d.approval_id = a.id), '[]'::jsonb) AS votes,
      COALESCE((SELECT w.dry_run FROM workflows w WHERE w.id = a.workflow_id), false) AS rehearsal
    FROM approvals a"""


def _record(row: asyncpg.Record) -> ApprovalRecord:
    return ApprovalRecord.model_validate(dict(row))


async def create(conn: asyncpg.Connection, *, workflow_id: int, incident_id: int, action: str, target: dict[str, Any],
                 parameters: dict[str, Any], reason: str, diff: str | None, expires_at: datetime,
                 requested_by: str = "kubernaut", approvals_required: int = 1) -> int:
    existing = await conn.fetchval("SELECT id FROM approvals WHERE workflow_id = $1", workflow_id)
    if existing is not None:
        return existing
    return await conn.fetchval(
        """INSERT INTO approvals (workflow_id, incident_id, action, target, parameters, reason, dry_run_diff,
                                  expires_at, requested_by, approvals_required)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING id""",
        workflow_id, incident_id, action, target, parameters, reason, diff, expires_at, requested_by,
        approvals_required,
    )


async def get(conn: asyncpg.Connection | asyncpg.Pool, approval_id: int) -> ApprovalRecord | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE a.id = $1", approval_id)
    return None if row is None else _record(row)


async def for_workflow(conn: asyncpg.Connection | asyncpg.Pool, workflow_id: int) -> ApprovalRecord | None:
    row = await conn.fetchrow(f"{_SELECT} WHERE a.workflow_id = $1", workflow_id)
    return None if row is None else _record(row)


async def for_decision(conn: asyncpg.Connection, approval_id: int) -> ApprovalRecord | None:
    """The approval, locked until the caller's transaction ends: one decision at a time."""
    row = await conn.fetchrow(f"{_SELECT} WHERE a.id = $1 FOR UPDATE OF a", approval_id)
    return None if row is None else _record(row)


async def record_vote(conn: asyncpg.Connection, approval_id: int, *, approve: bool, actor: str, method: str,
                      roles: list[str], address: str | None, user_agent: str | None, reason: str | None,
                      override: dict[str, Any] | None, dry_run_action_id: int | None) -> None:
    await conn.execute(
        """INSERT INTO approval_decisions (approval_id, approve, actor, method, roles, address, user_agent, reason,
                                           override, dry_run_action_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)""",
        approval_id, approve, actor, method, roles, address, user_agent, reason, override, dry_run_action_id)


async def hold_override(conn: asyncpg.Connection, approval_id: int, override: dict[str, Any] | None) -> None:
    """A first approval of several: its override is what the next approver approves (still pending)."""
    await conn.execute("UPDATE approvals SET override_parameters = $2 WHERE id = $1 AND status = 'pending'",
                       approval_id, override)


async def decide(conn: asyncpg.Connection, approval_id: int, *, status: str, by: str, reason: str | None,
                 override: dict[str, Any] | None, method: str | None = None, roles: list[str] | None = None,
                 address: str | None = None, user_agent: str | None = None) -> ApprovalRecord:
    await conn.execute(
        """UPDATE approvals SET status = $2, decided_by = $3, decided_at = now(), decision_reason = $4,
               override_parameters = $5, decided_method = $6, decided_roles = $7, decided_address = $8,
               decided_user_agent = $9 WHERE id = $1""",
        approval_id, status, by, reason, override, method, roles, address, user_agent,
    )
    return _record(await conn.fetchrow(f"{_SELECT} WHERE a.id = $1", approval_id))


async def expire(conn: asyncpg.Connection, approval_id: int) -> None:
    await conn.execute("UPDATE approvals SET status = 'expired' WHERE id = $1 AND status = 'pending'", approval_id)


async def use(conn: asyncpg.Connection, approval_id: int) -> bool:
    """Spend an approved approval; False when it is not (or no longer) approved, e.g. another replica used it."""
    used = await conn.fetchval(
        "UPDATE approvals SET status = 'used', used_at = now() WHERE id = $1 AND status = 'approved' RETURNING id",
        approval_id)
    return used is not None


async def expired_pending_workflows(conn: asyncpg.Connection | asyncpg.Pool) -> list[int]:
    """Workflows whose approval is still pending past its expiry."""
    rows = await conn.fetch("SELECT workflow_id FROM approvals WHERE status = 'pending' AND expires_at <= now()")
    return [r["workflow_id"] for r in rows]


async def pending_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return await conn.fetchval("SELECT count(*) FROM approvals WHERE status = 'pending'")


async def listing(pool: asyncpg.Pool, status: str | None, limit: int) -> list[ApprovalRecord]:
    rows = await pool.fetch(
        f"{_SELECT} WHERE ($1::text IS NULL OR a.status = $1) ORDER BY a.id DESC LIMIT $2", status, limit
    )
    return [_record(r) for r in rows]
