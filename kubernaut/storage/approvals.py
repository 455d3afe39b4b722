"""Approval requests: single use, attributed, expiring."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


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


async def for_workflow(conn: asyncpg.Connection | asyncpg.Pool, workflow_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM approvals WHERE workflow_id = $1", workflow_id)


async def listing(pool: asyncpg.Pool, status: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT * FROM approvals WHERE ($1::text IS NULL OR status = $1) ORDER BY id DESC LIMIT $2", status, limit
    )
    return [dict(r) for r in rows]
