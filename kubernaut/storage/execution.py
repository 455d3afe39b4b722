"""Action records of the executor: claimed by idempotency key, leased while running, finished once.

The row is written before anything talks to the cluster, so a retried request (same key) finds it
and gets the recorded outcome back instead of acting a second time (principle 1: nothing twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.storage import audit

RUNNING = "running"
FINISHED = ("planned", "dry_run", "refused", "succeeded", "failed")


class ActionRecord(BaseModel):
    """One action record as stored: the request, where the pipeline got to, and its outcome."""

    model_config = ConfigDict(frozen=True)

    id: int
    workflow_id: int | None
    incident_id: int | None
    action: str
    target: dict[str, JsonValue]
    parameters: dict[str, JsonValue]
    idempotency_key: str
    dry_run: bool
    status: str
    plan: list[str]
    diff: str | None
    result: dict[str, JsonValue]
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    target_key: str | None
    namespace: str | None
    cluster: str | None = None
    stage: str | None
    mutating: bool
    retryable: bool
    inverse: dict[str, JsonValue] | None
    inverse_of: int | None
    before: dict[str, JsonValue] | None
    after: dict[str, JsonValue] | None
    verification: dict[str, JsonValue] | None
    started_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None


def _record(row: asyncpg.Record | None) -> ActionRecord | None:
    return None if row is None else ActionRecord.model_validate(dict(row))


_COLUMNS = ", ".join(ActionRecord.model_fields)


async def claim(
    pool: asyncpg.Pool, request: ActionRequest, *, dry_run: bool, owner: str, lease_s: float, plan: list[str],
    target_key: str | None = None, cluster: str | None = None,
) -> tuple[ActionRecord, bool]:
    """Insert the running record for this key; (row, True) when new, (existing row, False) otherwise.
    ``target_key``/``cluster``: the fleet's key and cluster of the target (default: the target's own key)."""
    target = request.target
    row = await pool.fetchrow(
        """INSERT INTO actions (workflow_id, incident_id, action, target, parameters, idempotency_key, dry_run,
                                status, plan, target_key, namespace, stage, inverse_of, started_at,
                                lease_owner, lease_until, cluster)
           VALUES ($1,$2,$3,$4,$5,$6,$7,'running',$8,$9,$10,'validation',$11, now(), $12,
                   now() + make_interval(secs => $13), $14)
           ON CONFLICT (idempotency_key) DO NOTHING RETURNING """ + _COLUMNS,
        request.workflow_id, request.incident_id, request.action, target.model_dump(), request.parameters,
        request.idempotency_key, dry_run, plan, target_key or target.key, target.namespace or (
            target.name if target.kind == "Namespace" else None),
        request.inverse_of, owner, lease_s, cluster,
    )
    if row is not None:
        return ActionRecord.model_validate(dict(row)), True
    existing = await pool.fetchrow(f"SELECT {_COLUMNS} FROM actions WHERE idempotency_key = $1",
                                   request.idempotency_key)
    return ActionRecord.model_validate(dict(existing)), False


async def renew(pool: asyncpg.Pool, action_id: int, owner: str, lease_s: float) -> bool:
    done = await pool.fetchval(
        """UPDATE actions SET lease_until = now() + make_interval(secs => $3)
           WHERE id = $1 AND lease_owner = $2 AND status = 'running' RETURNING id""",
        action_id, owner, lease_s,
    )
    return done is not None


async def update(pool: asyncpg.Pool | asyncpg.Connection, action_id: int, **fields: Any) -> None:
    """Intermediate facts (stage, before-state, diff) written as the pipeline advances."""
    allowed = {"stage", "before", "after", "diff", "plan", "mutating", "parameters"}
    bad = set(fields) - allowed
    if bad:
        raise ValueError(f"not updatable while running: {sorted(bad)}")
    if not fields:
        return
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=2))
    await pool.execute(f"UPDATE actions SET {sets} WHERE id = $1", action_id, *fields.values())


async def finish(
    pool: asyncpg.Pool,
    action_id: int,
    *,
    status: str,
    stage: str,
    message: str,
    error: str | None = None,
    retryable: bool = False,
    diff: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    inverse: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    mutating: bool | None = None,
    owner: str | None = None,
) -> ActionRecord | None:
    """Record the outcome once, with its audit event, in one transaction; None if already finished
    (a concurrent interruption sweep won, whose record then stands)."""
    body = {**(result or {}), "message": message}
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """UPDATE actions SET status = $2, stage = $3, result = $4, error = $5, retryable = $6,
                      diff = COALESCE($7, diff), before = COALESCE($8, before), after = COALESCE($9, after),
                      inverse = $10, mutating = COALESCE($11, mutating), finished_at = now(),
                      lease_owner = NULL, lease_until = NULL
               WHERE id = $1 AND status = 'running' AND ($12::text IS NULL OR lease_owner = $12)
               RETURNING """ + _COLUMNS,
            action_id, status, stage, body, error, retryable, diff, before, after, inverse, mutating, owner,
        )
        record = _record(row)
        if record is None:
            return None
        detail: dict[str, Any] = {
            "action_id": action_id, "action": record.action, "target": record.target_key, "dry_run": record.dry_run,
            "stage": stage,
        }
        if error:
            detail["error"] = error[:500]
        await audit.append(conn, "executor", f"action.{status}", record.incident_id, detail)
    return record


async def interrupt_if_expired(pool: asyncpg.Pool, action_id: int) -> ActionRecord | None:
    """A running record whose lease ran out belongs to a dead replica: record that, never re-run it."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """UPDATE actions SET status = 'failed', finished_at = now(), lease_owner = NULL, lease_until = NULL,
                      error = 'interrupted: the executor replica running this action stopped before recording '
                              || 'its outcome',
                      result = result || jsonb_build_object('message',
                          CASE WHEN mutating THEN 'interrupted during execution: the change may or may not '
                               || 'have been applied; check the target (verify) before retrying'
                          ELSE 'interrupted before any change was made' END)
               WHERE id = $1 AND status = 'running' AND lease_until < now() RETURNING """ + _COLUMNS,
            action_id,
        )
        record = _record(row)
        if record is not None:
            await audit.append(conn, "executor", "action.interrupted", record.incident_id, {
                "action_id": action_id, "action": record.action, "target": record.target_key,
                "mutating": record.mutating,
            })
    return record


async def fetch(pool: asyncpg.Pool, action_id: int) -> ActionRecord | None:
    return _record(await pool.fetchrow(f"SELECT {_COLUMNS} FROM actions WHERE id = $1", action_id))


async def save_verification(pool: asyncpg.Pool, action_id: int, verification: dict[str, Any]) -> None:
    await pool.execute("UPDATE actions SET verification = $2 WHERE id = $1", action_id, verification)


def to_result(record: ActionRecord, verification_hint: str = "") -> ActionResult:
    message = record.result.get("message", "")
    return ActionResult(
        action_id=record.id, status=record.status, dry_run=record.dry_run, plan=record.plan, diff=record.diff,
        message=message if isinstance(message, str) else str(message), error=record.error,
        inverse=record.inverse, retryable=record.retryable, verification=verification_hint, stage=record.stage,
        before=record.before, after=record.after,
    )


async def undone_by(pool: asyncpg.Pool, inverse_of: int, action_id: int) -> int | None:
    """A live action other than ``action_id`` that undid (or is undoing) action ``inverse_of``."""
    return await pool.fetchval(
        "SELECT id FROM actions WHERE inverse_of = $1 AND id <> $2 AND NOT dry_run "
        "AND status IN ('succeeded', 'running') LIMIT 1",
        inverse_of, action_id,
    )


# -- blast-radius budget: live mutations counted from the records ---------------------------------------------

_BUDGET_LOCK = 0x4B4E_4255_4447  # serializes admissions across replicas


async def cooldown_left(pool: asyncpg.Pool, target_key: str, action: str, cooldown_s: float) -> float:
    """Seconds until ``cooldown_s`` have passed since the last live mutation of (target, action) ended."""
    left = await pool.fetchval(
        """SELECT EXTRACT(EPOCH FROM max(finished_at) + make_interval(secs => $3) - now())
           FROM actions WHERE target_key = $1 AND action = $2 AND NOT dry_run AND mutating
             AND status IN ('succeeded', 'failed')""",
        target_key, action, cooldown_s,
    )
    return max(0.0, float(left)) if left is not None else 0.0


async def lock_budget(conn: asyncpg.Connection) -> None:
    """Hold the budget lock for the caller's transaction: admissions of every replica take turns."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _BUDGET_LOCK)


async def mutations_since(conn: asyncpg.Connection | asyncpg.Pool, window_s: float, *,
                          except_id: int | None = None, namespace: str | None = None,
                          cluster: str | None = None) -> int:
    """Live mutations started in the last ``window_s`` (in ``namespace`` when given, on ``cluster`` when given:
    each cluster of a fleet has its own budget), ``except_id`` left out."""
    if namespace is None:
        total = await conn.fetchval(
            "SELECT count(*) FROM actions WHERE mutating AND id IS DISTINCT FROM $1 "
            "AND started_at > now() - make_interval(secs => $2) AND ($3::text IS NULL OR cluster = $3)",
            except_id, window_s, cluster,
        )
    else:
        total = await conn.fetchval(
            "SELECT count(*) FROM actions WHERE mutating AND id IS DISTINCT FROM $1 AND namespace = $2 "
            "AND started_at > now() - make_interval(secs => $3) AND ($4::text IS NULL OR cluster = $4)",
            except_id, namespace, window_s, cluster,
        )
    return int(total)


async def nodes_in_flight(conn: asyncpg.Connection, actions: Sequence[str], *, except_id: int,
                          cluster: str | None = None) -> set[str]:
    """Nodes that running live ``actions`` (other than ``except_id``) are taking out of scheduling."""
    rows = await conn.fetch(
        "SELECT target ->> 'name' AS node FROM actions WHERE status = 'running' AND mutating AND id <> $1 "
        "AND action = ANY($2::text[]) AND ($3::text IS NULL OR cluster = $3)",
        except_id, list(actions), cluster,
    )
    return {r["node"] for r in rows}


async def reserve_mutation(conn: asyncpg.Connection, action_id: int) -> None:
    await conn.execute("UPDATE actions SET mutating = true, started_at = now() WHERE id = $1", action_id)


async def release_mutation(pool: asyncpg.Pool, action_id: int) -> None:
    """The reserved mutation did not happen: it no longer counts against the budget."""
    await pool.execute("UPDATE actions SET mutating = false WHERE id = $1 AND status = 'running'", action_id)
