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


def _record(row: asyncpg.Record) -> ApprovalRecord:
    return ApprovalRecord.model_validate(dict(row))


async def create(conn: asyncpg.Connection, *, workflow_id: int, incident_id: int, action: str, target: dict[str, Any],
                 parameters: dict[str, Any], reason: str, diff: str | None, expires_at: datetime) -> int:
    existing = await conn.fetchval("SELECT id FROM approvals WHERE workflow_id = $1", workflow_id)
    if existing is not None:
        return existing
    return await conn.fetchval(
        """INSERT INTO approvals (workflow_id, incident_id, action, target, parameters, reason, dry_run_diff,
                                  expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id""",
        workflow_id, incident_id, action, target, parameters, reason, diff, expires_at,
    )


async def for_workflow(conn: asyncpg.Connection | asyncpg.Pool, workflow_id: int) -> ApprovalRecord | None:
    row = await conn.fetchrow("SELECT * FROM approvals WHERE workflow_id = $1", workflow_id)
    return None if row is None else _record(row)


async def for_decision(conn: asyncpg.Connection, approval_id: int) -> ApprovalRecord | None:
    """The approval, locked until the caller's transaction ends: one decision at a time."""
    row = await conn.fetchrow("SELECT * FROM approvals WHERE id = $1 FOR UPDATE", approval_id)
    return None if row is None else _record(row)


async def decide(conn: asyncpg.Connection, approval_id: int, *, status: str, by: str, reason: str | None,
                 override: dict[str, Any] | None) -> ApprovalRecord:
    row = await conn.fetchrow(
        """UPDATE approvals SET status = $2, decided_by = $3, decided_at = now(), decision_reason = $4,
               override_parameters = $5 WHERE id = $1 RETURNING *""",
        approval_id, status, by, reason, override,
    )
    return _record(row)


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
        "SELECT * FROM approvals WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2", status, limit
    )
    return [_record(r) for r in rows]
