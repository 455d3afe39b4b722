"""Retention: old alerts, actions and notifications of finished incidents are deleted, in short batches.

What goes: rows older than the cutoff that belong to an incident resolved or closed before the cutoff (and
processed alerts that never became an incident). What stays, whatever its age:

- ``audit_events`` (append-only, hash-chained: deleting a row would break ``GET /api/v1/audit/verify``);
- incidents, analyses, workflows and approvals (what the audit trail and the autonomy gate refer to);
- actions whose assessment is pending, still waiting in ``mining_inbox`` (not yet counted in
  ``action_stats``) or younger than ``keep_assessed_since`` (the window the mined patterns and the
  per-workload history read): deleting those would change what the learning loop knows;
- alerts not processed yet, and notifications still being delivered.

An action's assessment (``assessments.action_id`` is NOT NULL) goes with it once mining has counted it;
references that may be empty (``workflow_steps.action_id``, ``actions.inverse_of``,
``execution_locks.action_id``) are set NULL first. Each batch is one transaction under an advisory lock,
so two callers never delete the same rows at once and a crash between batches loses nothing.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import asyncpg

_LOCK_RETENTION = 0x4B4E_5245_5401

# Incidents that are over: resolved or closed, and not touched since the cutoff.
_FINISHED = """SELECT id FROM incidents WHERE status IN ('resolved', 'closed')
               AND coalesce(resolved_at, updated_at) < $1 AND updated_at < $1"""

ALERTS_SQL = f"""
DELETE FROM alerts WHERE id IN (
    SELECT id FROM alerts
    WHERE received_at < $1 AND processed_at IS NOT NULL
      AND (incident_id IS NULL OR incident_id IN ({_FINISHED}))
    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
"""

NOTIFICATIONS_SQL = f"""
DELETE FROM notifications WHERE id IN (
    SELECT id FROM notifications
    WHERE created_at < $1 AND status IN ('sent', 'logged', 'failed') AND incident_id IN ({_FINISHED})
    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
"""

ACTIONS_SQL = f"""
SELECT x.id FROM actions x
WHERE x.created_at < $1 AND x.finished_at IS NOT NULL AND x.finished_at < $1
  AND (x.lease_until IS NULL OR x.lease_until < now())
  AND x.incident_id IN ({_FINISHED})
  AND NOT EXISTS (
      SELECT 1 FROM assessments a WHERE a.action_id = x.id
        AND (a.status = 'pending' OR a.action_at >= $2
             OR EXISTS (SELECT 1 FROM mining_inbox q WHERE q.assessment_id = a.id)))
ORDER BY x.id LIMIT $3 FOR UPDATE OF x SKIP LOCKED
"""


async def _delete_actions(conn: asyncpg.Connection, older_than: datetime, keep_assessed_since: datetime,
                          batch: int) -> tuple[int, int]:
    ids = [r["id"] for r in await conn.fetch(ACTIONS_SQL, older_than, keep_assessed_since, batch)]
    if not ids:
        return 0, 0
    await conn.execute("UPDATE workflow_steps SET action_id = NULL WHERE action_id = ANY($1::bigint[])", ids)
    await conn.execute("UPDATE actions SET inverse_of = NULL WHERE inverse_of = ANY($1::bigint[])", ids)
    await conn.execute("UPDATE execution_locks SET action_id = NULL WHERE action_id = ANY($1::bigint[])", ids)
    assessed = await conn.execute("DELETE FROM assessments WHERE action_id = ANY($1::bigint[])", ids)
    deleted = await conn.execute("DELETE FROM actions WHERE id = ANY($1::bigint[])", ids)
    return int(deleted.split()[-1]), int(assessed.split()[-1])


async def _batch(pool: asyncpg.Pool, older_than: datetime, keep_assessed_since: datetime,
                 batch: int) -> dict[str, int] | None:
    """One batch of each kind in one transaction; None when another caller holds the retention lock."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_RETENTION):
            return None
        alerts = int((await conn.execute(ALERTS_SQL, older_than, batch)).split()[-1])
        notifications = int((await conn.execute(NOTIFICATIONS_SQL, older_than, batch)).split()[-1])
        actions, assessments = await _delete_actions(conn, older_than, keep_assessed_since, batch)
        return {"alerts": alerts, "notifications": notifications, "actions": actions, "assessments": assessments}


async def retention_round(pool: asyncpg.Pool, *, older_than: datetime, keep_assessed_since: datetime,
                          batch: int = 5000, budget_s: float = 20.0) -> dict[str, Any] | None:
    """Delete batches until nothing old is left or the time budget is spent. Returns the rows deleted per
    table and ``more`` (rows left for the next round), or None when another replica is at it. The round and
    its counts are recorded in ``mining_state`` (task ``retention``, shown at ``GET /api/v1/patterns``)."""
    deadline = time.monotonic() + budget_s
    totals = {"alerts": 0, "notifications": 0, "actions": 0, "assessments": 0}
    more = False
    while True:
        done = await _batch(pool, older_than, keep_assessed_since, batch)
        if done is None:
            return None
        for key, n in done.items():
            totals[key] += n
        if max(done["alerts"], done["notifications"], done["actions"]) < batch:
            break
        if time.monotonic() >= deadline:
            more = True
            break
    await pool.execute(
        """INSERT INTO mining_state (task, round, cursor, detail, started_at, finished_at)
           VALUES ('retention', 1, $1, $2, now(), now())
           ON CONFLICT (task) DO UPDATE SET round = mining_state.round + 1, cursor = mining_state.cursor + $1,
               detail = EXCLUDED.detail, finished_at = now()""",
        sum(totals.values()), {**totals, "older_than": older_than.isoformat(), "more": more})
    return {**totals, "more": more}
