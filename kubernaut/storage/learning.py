"""Measured outcomes per (signature, action): ``action_stats``, its inbox ``mining_inbox``, and ``mining_state``.

Final assessments enter ``mining_inbox`` in the transaction that finalizes them; the miner folds them
into ``action_stats`` in batches (each batch deletes its inbox rows and adds their counts in one
transaction, so a crash between batches loses nothing and counts nothing twice). Every read adds the
inbox tail to the folded counters in one statement (one snapshot), so an outcome counts the moment it
is assessed — never twice, never not at all.

Signatures are ``kubernaut.models.signature.signature_of``; in SQL over ``incidents`` that is
``coalesce(signals[1], 'unknown') || ':' || target_kind``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from enum import IntEnum

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue


class MiningLock(IntEnum):
    """Transaction-level advisory locks: one replica at a time per part of a mining round."""

    STATS = 0x4B4E_4D49_4E01
    PATTERNS = 0x4B4E_4D49_4E02
    EMBED = 0x4B4E_4D49_4E03


class OutcomeCounts(BaseModel):
    """Assessed outcomes of one action for one signature (folded counters plus the inbox tail)."""

    model_config = ConfigDict(frozen=True)

    action: str
    executions: int
    effective: int
    ineffective: int
    score_sum: float
    scored: int
    recovery_s_sum: float
    recoveries: int
    last_at: datetime | None


class ActionStatsRow(BaseModel):
    """One (signature, action) of the statistics as ``GET /api/v1/patterns`` lists them.

    ``recovery_s_sum``/``recoveries`` are None while the pair exists only in the inbox tail.
    """

    model_config = ConfigDict(frozen=True)

    signature: str
    action: str
    alertname: str
    target_kind: str
    executions: int
    effective: int
    ineffective: int
    score_sum: float
    scored: int
    recovery_s_sum: float | None
    recoveries: int | None
    last_at: datetime | None


class MiningTask(BaseModel):
    """Progress of one part of the mining rounds (``stats``, ``patterns``, ``embed``)."""

    model_config = ConfigDict(frozen=True)

    task: str
    round: int
    cursor: int
    detail: dict[str, JsonValue]
    started_at: datetime | None
    finished_at: datetime | None


@asynccontextmanager
async def exclusive(pool: asyncpg.Pool, lock: MiningLock) -> AsyncIterator[asyncpg.Connection | None]:
    """A transaction holding ``lock``, or None when another replica holds it right now (nothing waits)."""
    async with pool.acquire() as conn, conn.transaction():
        yield conn if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", int(lock)) else None


async def holds(conn: asyncpg.Connection, lock: MiningLock) -> bool:
    """Take ``lock`` for the transaction of ``conn``; False when another replica holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", int(lock)))


# --- the inbox and the counters -----------------------------------------------------------------------

async def enqueue_outcome(conn: asyncpg.Connection, assessment_id: int) -> None:
    """A final assessment waits for mining; call in the transaction that finalizes it."""
    await conn.execute("INSERT INTO mining_inbox (assessment_id) VALUES ($1)", assessment_id)


async def inbox_size(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM mining_inbox"))


# Two steps in one transaction: take a batch out of the inbox, then fold exactly those rows in. The ids go
# back as an array so the second step reads them by primary key (a CTE join would scan every assessment).
TAKE_BATCH_SQL = """
DELETE FROM mining_inbox WHERE assessment_id IN (
    SELECT assessment_id FROM mining_inbox ORDER BY assessment_id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING assessment_id
"""

STATS_BATCH_SQL = """
WITH marked AS (
    SELECT a.signature, a.action, a.alertname, a.target_kind, a.verdict, a.score, a.action_at, a.recovered_at,
           a.incident_id
    FROM assessments a WHERE a.id = ANY($1::bigint[])
), agg AS (
    SELECT m.signature, m.action, min(m.alertname) AS alertname, min(m.target_kind) AS target_kind,
           count(*) AS executions,
           count(*) FILTER (WHERE m.verdict = 'effective') AS effective,
           count(*) FILTER (WHERE m.verdict = 'ineffective') AS ineffective,
           count(*) FILTER (WHERE m.verdict IS DISTINCT FROM 'effective' AND m.verdict IS DISTINCT FROM 'ineffective')
               AS inconclusive,
           coalesce(sum(m.score), 0) AS score_sum, count(m.score) AS scored,
           coalesce(sum(extract(epoch FROM m.recovered_at - i.first_seen))
                    FILTER (WHERE m.recovered_at >= i.first_seen), 0) AS recovery_s_sum,
           count(*) FILTER (WHERE m.recovered_at >= i.first_seen) AS recoveries,
           min(m.action_at) AS first_at, max(m.action_at) AS last_at
    FROM marked m LEFT JOIN incidents i ON i.id = m.incident_id
    GROUP BY m.signature, m.action
), up AS (
    INSERT INTO action_stats AS s (signature, action, alertname, target_kind, executions, effective, ineffective,
                                   inconclusive, score_sum, scored, recovery_s_sum, recoveries, first_at, last_at)
    SELECT signature, action, alertname, target_kind, executions, effective, ineffective, inconclusive, score_sum,
           scored, recovery_s_sum, recoveries, first_at, last_at FROM agg
    ON CONFLICT (signature, action) DO UPDATE SET
        executions = s.executions + EXCLUDED.executions, effective = s.effective + EXCLUDED.effective,
        ineffective = s.ineffective + EXCLUDED.ineffective, inconclusive = s.inconclusive + EXCLUDED.inconclusive,
        score_sum = s.score_sum + EXCLUDED.score_sum, scored = s.scored + EXCLUDED.scored,
        recovery_s_sum = s.recovery_s_sum + EXCLUDED.recovery_s_sum, recoveries = s.recoveries + EXCLUDED.recoveries,
        first_at = LEAST(s.first_at, EXCLUDED.first_at), last_at = GREATEST(s.last_at, EXCLUDED.last_at),
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM up) AS keys
"""


async def fold_batch(pool: asyncpg.Pool, batch: int) -> int | None:
    """Fold up to ``batch`` inbox rows into ``action_stats``; rows folded, or None if another replica
    holds the statistics lock right now."""
    async with exclusive(pool, MiningLock.STATS) as conn:
        if conn is None:
            return None
        ids = [r["assessment_id"] for r in await conn.fetch(TAKE_BATCH_SQL, batch)]
        if ids:
            await conn.execute(STATS_BATCH_SQL, ids)
            await conn.execute(
                """INSERT INTO mining_state (task, cursor, finished_at) VALUES ('stats', $1, now())
                   ON CONFLICT (task) DO UPDATE SET cursor = mining_state.cursor + $1, finished_at = now()""",
                len(ids))
        return len(ids)


_OUTCOMES_SQL = """
WITH tail AS (
    SELECT t.signature, t.action, count(*) AS executions,
           count(*) FILTER (WHERE t.verdict = 'effective') AS effective,
           count(*) FILTER (WHERE t.verdict = 'ineffective') AS ineffective,
           coalesce(sum(t.score), 0) AS score_sum, count(t.score) AS scored,
           coalesce(sum(extract(epoch FROM t.recovered_at - i.first_seen))
                    FILTER (WHERE t.recovered_at >= i.first_seen), 0) AS recovery_s_sum,
           count(*) FILTER (WHERE t.recovered_at >= i.first_seen) AS recoveries,
           max(t.action_at) AS last_at
    FROM mining_inbox q JOIN assessments t ON t.id = q.assessment_id LEFT JOIN incidents i ON i.id = t.incident_id
    WHERE t.signature = $1 AND ($2::text[] IS NULL OR t.action = ANY($2))
    GROUP BY t.signature, t.action
), stats AS (
    SELECT * FROM action_stats WHERE signature = $1 AND ($2::text[] IS NULL OR action = ANY($2))
)
SELECT coalesce(s.action, t.action) AS action,
       coalesce(s.executions, 0) + coalesce(t.executions, 0) AS executions,
       coalesce(s.effective, 0) + coalesce(t.effective, 0) AS effective,
       coalesce(s.ineffective, 0) + coalesce(t.ineffective, 0) AS ineffective,
       coalesce(s.score_sum, 0) + coalesce(t.score_sum, 0) AS score_sum,
       coalesce(s.scored, 0) + coalesce(t.scored, 0) AS scored,
       coalesce(s.recovery_s_sum, 0) + coalesce(t.recovery_s_sum, 0) AS recovery_s_sum,
       coalesce(s.recoveries, 0) + coalesce(t.recoveries, 0) AS recoveries,
       GREATEST(s.last_at, t.last_at) AS last_at
FROM stats s FULL JOIN tail t ON t.action = s.action
"""


async def outcomes(conn: asyncpg.Connection | asyncpg.Pool, signature: str,
                   actions: Sequence[str] | None = None) -> dict[str, OutcomeCounts]:
    """Counts per action with history for one signature (only ``actions`` when given)."""
    rows = await conn.fetch(_OUTCOMES_SQL, signature, list(actions) if actions is not None else None)
    return {r["action"]: OutcomeCounts.model_validate(dict(r)) for r in rows}


_STATS_SQL = """
WITH tail AS (
    SELECT signature, action, min(alertname) AS alertname, min(target_kind) AS target_kind, count(*) AS executions,
           count(*) FILTER (WHERE verdict = 'effective') AS effective,
           count(*) FILTER (WHERE verdict = 'ineffective') AS ineffective,
           coalesce(sum(score), 0) AS score_sum, count(score) AS scored, max(action_at) AS last_at
    FROM mining_inbox q JOIN assessments a ON a.id = q.assessment_id GROUP BY signature, action
)
SELECT coalesce(s.signature, t.signature) AS signature, coalesce(s.action, t.action) AS action,
       coalesce(s.alertname, t.alertname) AS alertname, coalesce(s.target_kind, t.target_kind) AS target_kind,
       coalesce(s.executions, 0) + coalesce(t.executions, 0) AS executions,
       coalesce(s.effective, 0) + coalesce(t.effective, 0) AS effective,
       coalesce(s.ineffective, 0) + coalesce(t.ineffective, 0) AS ineffective,
       coalesce(s.score_sum, 0) + coalesce(t.score_sum, 0) AS score_sum,
       coalesce(s.scored, 0) + coalesce(t.scored, 0) AS scored,
       s.recovery_s_sum, s.recoveries, GREATEST(s.last_at, t.last_at) AS last_at
FROM action_stats s FULL JOIN tail t ON t.signature = s.signature AND t.action = s.action
ORDER BY executions DESC, signature, action LIMIT $1
"""


async def stats(conn: asyncpg.Connection | asyncpg.Pool, limit: int = 100) -> list[ActionStatsRow]:
    """The (signature, action) pairs with the most executions first."""
    return [ActionStatsRow.model_validate(dict(r)) for r in await conn.fetch(_STATS_SQL, limit)]


# How often the analysis chose each action (dry-run included): what the statistics are measured against.
_CHOSEN_SQL = """
SELECT coalesce(i.signals[1], 'unknown') || ':' || i.target_kind AS signature, a.action, count(*) AS chosen
FROM analyses a JOIN incidents i ON i.id = a.incident_id
WHERE a.created_at > now() - interval '30 days'
GROUP BY 1, 2
"""


async def chosen_last_30_days(conn: asyncpg.Connection | asyncpg.Pool) -> dict[tuple[str, str], int]:
    """How often the analysis chose each action per signature in the last 30 days: (signature, action) → count."""
    return {(r["signature"], r["action"]): int(r["chosen"]) for r in await conn.fetch(_CHOSEN_SQL)}


# --- mining progress ------------------------------------------------------------------------------------

async def next_round(conn: asyncpg.Connection, task: str) -> int:
    """Start the next round of ``task``; its number."""
    return int(await conn.fetchval(
        """INSERT INTO mining_state (task, round, started_at) VALUES ($1, 1, now())
           ON CONFLICT (task) DO UPDATE SET round = mining_state.round + 1, started_at = now() RETURNING round""",
        task))


async def finish_round(conn: asyncpg.Connection | asyncpg.Pool, task: str, detail: dict[str, JsonValue]) -> None:
    await conn.execute("UPDATE mining_state SET detail = $2, finished_at = now() WHERE task = $1", task, detail)


async def cursor(conn: asyncpg.Connection | asyncpg.Pool, task: str) -> int:
    """Where ``task`` left off (0 before its first round)."""
    return int(await conn.fetchval("SELECT cursor FROM mining_state WHERE task = $1", task) or 0)


async def set_cursor(conn: asyncpg.Connection | asyncpg.Pool, task: str, position: int) -> None:
    await conn.execute(
        """INSERT INTO mining_state (task, cursor, finished_at) VALUES ($1, $2, now())
           ON CONFLICT (task) DO UPDATE SET cursor = EXCLUDED.cursor, finished_at = now()""", task, position)


async def tasks(conn: asyncpg.Connection | asyncpg.Pool) -> list[MiningTask]:
    return [MiningTask.model_validate(dict(r)) for r in await conn.fetch("SELECT * FROM mining_state")]


# --- the incident as the learning side keys it --------------------------------------------------------

class LearningIncident(BaseModel):
    """The incident fields outcomes are keyed and described by."""

    model_config = ConfigDict(frozen=True)

    id: int
    fingerprint: str
    signals: list[str]
    target_kind: str
    target_name: str
    target_namespace: str | None
    severity: str | None
    environment: str | None
    cluster: str | None = None  # None: from before the fleet (the home cluster)


async def learning_incident(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> LearningIncident | None:
    row = await conn.fetchrow(
        """SELECT id, fingerprint, coalesce(signals, '{}') AS signals, target_kind, target_name, target_namespace,
                  severity, environment, cluster FROM incidents WHERE id = $1""", incident_id)
    return LearningIncident.model_validate(dict(row)) if row is not None else None
