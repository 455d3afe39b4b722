"""Mined patterns (``patterns``): recurring incidents, ineffective chains, oscillation, harmful side effects.

Each kind is recomputed over a window in set-based SQL and swapped in whole: readers see the previous set
or the new one, never half of each. The signature in ``recurring`` is kubernaut/models/signature.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from kubernaut.storage.learning import MiningLock, finish_round, holds, next_round

PatternKind = Literal["recurring", "ineffective_chain", "oscillation", "harmful"]
KINDS: tuple[PatternKind, ...] = ("recurring", "oscillation", "ineffective_chain", "harmful")
# Window sorts over the whole history: in memory, not in temporary files (one miner at a time).
WORK_MEM = "256MB"


class Pattern(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: PatternKind
    key: str
    count: int
    detail: dict[str, JsonValue]
    first_at: datetime | None
    last_at: datetime | None
    updated_at: datetime | None = None


RECURRING_SQL = """
INSERT INTO patterns (kind, key, count, detail, first_at, last_at, round)
SELECT 'recurring', fingerprint || '|' || sig, count(*),
       jsonb_build_object('signature', sig, 'fingerprint', fingerprint,
                          'target', jsonb_build_object('kind', min(target_kind), 'name', min(target_name),
                                                       'namespace', min(target_namespace)),
                          'target_key', min(coalesce(target_namespace, '_cluster') || ':' || target_kind || ':'
                                            || target_name),
                          'incident_ids', to_jsonb((array_agg(id ORDER BY id DESC))[1:10])),
       min(first_seen), max(last_seen), $3
FROM (SELECT id, fingerprint, coalesce(signals[1], 'unknown') || ':' || target_kind AS sig, target_kind, target_name,
             target_namespace, first_seen, last_seen
      FROM incidents WHERE first_seen > now() - make_interval(secs => $1)) s
GROUP BY fingerprint, sig HAVING count(*) >= $2
"""

# Runs of consecutive ineffective outcomes per target: every effective outcome starts a new group, so
# the ineffective rows of one group are one run (a single window sort; inconclusive rows neither extend
# nor break a run).
CHAINS_SQL = """
WITH seq AS (
    SELECT target_key, action, signature, verdict, action_at, action_id,
           count(*) FILTER (WHERE verdict = 'effective') OVER (PARTITION BY target_key ORDER BY action_at, id) AS grp
    FROM assessments
    WHERE status <> 'pending' AND verdict IN ('effective', 'ineffective')
      AND action_at > now() - make_interval(secs => $1)
)
INSERT INTO patterns (kind, key, count, detail, first_at, last_at, round)
SELECT 'ineffective_chain', target_key || '|' || min(action_id), count(*),
       jsonb_build_object('target_key', target_key,
                          'actions', to_jsonb((array_agg(action ORDER BY action_at))[1:20]),
                          'action_ids', to_jsonb((array_agg(action_id ORDER BY action_at))[1:20]),
                          'signatures', to_jsonb(array_agg(DISTINCT signature))),
       min(action_at), max(action_at), $3
FROM seq WHERE verdict = 'ineffective' GROUP BY target_key, grp HAVING count(*) >= $2
"""

OSCILLATION_SQL = """
WITH seq AS (
    SELECT a.target_key, a.action, a.action_at,
           CASE WHEN x.parameters->>'replicas' ~ '^[0-9]+$' THEN (x.parameters->>'replicas')::int END AS replicas,
           lag(a.action) OVER w AS prev_action, lag(a.action_at) OVER w AS prev_at,
           lag(CASE WHEN x.parameters->>'replicas' ~ '^[0-9]+$' THEN (x.parameters->>'replicas')::int END) OVER w
               AS prev_replicas,
           lag(CASE WHEN x.parameters->>'replicas' ~ '^[0-9]+$' THEN (x.parameters->>'replicas')::int END, 2) OVER w
               AS prev2_replicas
    FROM assessments a JOIN actions x ON x.id = a.action_id
    WHERE a.action_at > now() - make_interval(secs => $1)
    WINDOW w AS (PARTITION BY a.target_key ORDER BY a.action_at, a.id)
), flips AS (
    SELECT target_key, action, action_at,
           CASE WHEN (prev_action || '>' || action) = ANY($2::text[]) THEN 'reversal'
                WHEN action = prev_action AND (replicas - prev_replicas) * (prev_replicas - prev2_replicas) < 0
                    THEN 'reversal'
                WHEN action = prev_action THEN 'repeat' END AS flip
    FROM seq WHERE prev_at IS NOT NULL AND action_at - prev_at <= make_interval(secs => $3)
)
INSERT INTO patterns (kind, key, count, detail, first_at, last_at, round)
SELECT 'oscillation', target_key, count(*),
       jsonb_build_object('target_key', target_key,
                          'reversals', count(*) FILTER (WHERE flip = 'reversal'),
                          'repeats', count(*) FILTER (WHERE flip = 'repeat'),
                          'actions', to_jsonb(array_agg(DISTINCT action))),
       min(action_at), max(action_at), $4
FROM flips WHERE flip IS NOT NULL GROUP BY target_key
HAVING count(*) FILTER (WHERE flip = 'reversal') >= 1 OR count(*) FILTER (WHERE flip = 'repeat') >= 2
"""

# A "new" alert: firing in the action's namespace soon after it, with a name the incident did not have
# when the action ran. Compared with the rate over all actions (lift), so busy namespaces do not make
# every action look harmful.
HARMFUL_SQL = """
WITH acts AS (
    SELECT a.action, a.action_at, a.incident_id, a.target->>'namespace' AS namespace
    FROM assessments a
    WHERE a.action_at > now() - make_interval(secs => $1) AND a.target->>'namespace' IS NOT NULL
), marked AS (
    SELECT acts.action, EXISTS (
        SELECT 1 FROM alerts al
        WHERE al.namespace = acts.namespace AND al.received_at > acts.action_at
          AND al.received_at <= acts.action_at + make_interval(secs => $2) AND al.status = 'firing'
          AND NOT EXISTS (SELECT 1 FROM alerts p WHERE p.incident_id = acts.incident_id
                          AND p.alertname = al.alertname AND p.received_at <= acts.action_at)
    ) AS followed
    FROM acts
), per AS (
    SELECT action, count(*) AS n, count(*) FILTER (WHERE followed) AS f FROM marked GROUP BY action
), overall AS (
    SELECT sum(f)::float8 / nullif(sum(n), 0) AS rate FROM per
)
INSERT INTO patterns (kind, key, count, detail, first_at, last_at, round)
SELECT 'harmful', per.action, per.f,
       jsonb_build_object('action', per.action, 'executions', per.n, 'followed_by_new_alert', per.f,
                          'rate', round((per.f::float8 / per.n)::numeric, 4),
                          'baseline_rate', round(coalesce(overall.rate, 0)::numeric, 4),
                          'lift', CASE WHEN overall.rate > 0
                                       THEN round(((per.f::float8 / per.n) / overall.rate)::numeric, 2) END),
       NULL, NULL, $5
FROM per, overall
WHERE per.n >= $3 AND per.f::float8 / per.n >= $4 AND per.f::float8 / per.n >= 1.5 * coalesce(overall.rate, 0)
"""


async def recompute(pool: asyncpg.Pool, *, window_s: float, recurring_min: int, chain_length: int,
                    opposites: Sequence[tuple[str, str]], oscillation_window_s: float, harmful_window_s: float,
                    harmful_min_cases: int, harmful_min_rate: float) -> dict[str, int] | None:
    """Recompute every kind over the window; counts per kind, or None when another replica is at it.
    ``opposites`` are pairs of actions that undo each other (either order is a reversal)."""
    counts: dict[str, int] = {}
    async with pool.acquire() as conn:
        async with conn.transaction():
            if not await holds(conn, MiningLock.PATTERNS):
                return None
            round_no = await next_round(conn, "patterns")
        flips = [f"{a}>{b}" for a, b in opposites] + [f"{b}>{a}" for a, b in opposites]
        plans: list[tuple[PatternKind, str, tuple[object, ...]]] = [
            ("recurring", RECURRING_SQL, (window_s, recurring_min, round_no)),
            ("ineffective_chain", CHAINS_SQL, (window_s, chain_length, round_no)),
            ("oscillation", OSCILLATION_SQL, (window_s, flips, oscillation_window_s, round_no)),
            ("harmful", HARMFUL_SQL, (window_s, harmful_window_s, harmful_min_cases, harmful_min_rate, round_no)),
        ]
        for kind, sql, args in plans:
            # One swap per kind: readers see the previous set or the new one, never half of each.
            async with conn.transaction():
                if not await holds(conn, MiningLock.PATTERNS):
                    return None
                await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
                await conn.execute("DELETE FROM patterns WHERE kind = $1", kind)
                status = await conn.execute(sql, *args)
                counts[kind] = int(status.split()[-1])
        await finish_round(conn, "patterns", dict(counts))
    return counts


async def harmful(conn: asyncpg.Connection | asyncpg.Pool, actions: Sequence[str]) -> dict[str, Pattern]:
    """The ``harmful`` patterns of these actions, by action."""
    rows = await conn.fetch("SELECT kind, key, count, detail, first_at, last_at FROM patterns "
                            "WHERE kind = 'harmful' AND key = ANY($1)", list(actions))
    return {r["key"]: Pattern.model_validate(dict(r)) for r in rows}


async def concerning(conn: asyncpg.Connection | asyncpg.Pool, fingerprint: str, target_key: str) -> list[Pattern]:
    """Patterns about one workload: its recurring incidents (by fingerprint), chains and oscillation (by target)."""
    rows = await conn.fetch(
        """SELECT kind, key, count, detail, first_at, last_at FROM patterns
           WHERE (kind = 'recurring' AND detail->>'fingerprint' = $1)
              OR (kind IN ('ineffective_chain', 'oscillation') AND detail->>'target_key' = $2)""",
        fingerprint, target_key)
    return [Pattern.model_validate(dict(r)) for r in rows]


async def top(conn: asyncpg.Connection | asyncpg.Pool, limit: int = 100) -> list[Pattern]:
    """Up to ``limit`` patterns per kind, the most frequent (then the latest) first, ordered by kind."""
    rows = await conn.fetch(
        """SELECT * FROM (SELECT kind, key, count, detail, first_at, last_at, updated_at,
                                 row_number() OVER (PARTITION BY kind ORDER BY count DESC, last_at DESC NULLS LAST) AS n
                          FROM patterns) p WHERE n <= $1 ORDER BY kind, n""", limit)
    return [Pattern.model_validate({k: r[k] for k in ("kind", "key", "count", "detail", "first_at", "last_at",
                                                        "updated_at")}) for r in rows]
