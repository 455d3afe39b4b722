"""Pattern mining in PostgreSQL, where the history is: set-based SQL, never row-by-row Python.

A mining round has three parts, each in short transactions of its own so ingest is never blocked
(plain reads take no locks the writers wait for, and the only rows written are the miner's own):

1. **statistics** — final assessments not yet counted (``mining_inbox``) are folded into
   ``action_stats`` in batches. Each batch deletes its inbox rows and adds their counts in one
   statement, so a crash between batches loses nothing and counts nothing twice, and the next round
   on any replica resumes there;
2. **patterns** — recurring incidents, ineffective chains, oscillation and harmful side effects are
   recomputed over a window and swapped into ``patterns`` per kind;
3. **embeddings** — incidents that have none yet are embedded (see :mod:`.similarity`).

A transaction-level advisory lock per part keeps two replicas from doing the same part at once.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from kubernaut.config.settings import IntelligenceConfig, StorageConfig
from kubernaut.intelligence.embeddings import Embedder, EmbeddingError
from kubernaut.intelligence.similarity import upsert_incident
from kubernaut.storage.retention import retention_round

logger = logging.getLogger(__name__)

_LOCK_STATS = 0x4B4E_4D49_4E01
_LOCK_PATTERNS = 0x4B4E_4D49_4E02
_LOCK_EMBED = 0x4B4E_4D49_4E03
# Actions that undo each other (as kubernaut.orchestration.blocking): alternating them is oscillation.
OPPOSITES = (("cordon_node", "uncordon_node"), ("pause_rollout", "resume_rollout"),
             ("suspend_cronjob", "resume_cronjob"), ("taint_node", "remove_taint"))
# A new incident this young may still be waiting for its analysis: the embedding sweep waits for it.
_EMBED_SETTLE_S = 600.0
_PATTERN_WORK_MEM = "256MB"

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


async def _next_round(conn: asyncpg.Connection, task: str) -> int:
    return await conn.fetchval(
        """INSERT INTO mining_state (task, round, started_at) VALUES ($1, 1, now())
           ON CONFLICT (task) DO UPDATE SET round = mining_state.round + 1, started_at = now() RETURNING round""",
        task)


async def mine_stats_batch(pool: asyncpg.Pool, batch: int) -> int | None:
    """Fold one batch of final assessments into ``action_stats``; rows folded, or None if another replica
    holds the statistics lock right now."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_STATS):
            return None
        ids = [r["assessment_id"] for r in await conn.fetch(TAKE_BATCH_SQL, batch)]
        if ids:
            await conn.execute(STATS_BATCH_SQL, ids)
            await conn.execute(
                """INSERT INTO mining_state (task, cursor, finished_at) VALUES ('stats', $1, now())
                   ON CONFLICT (task) DO UPDATE SET cursor = mining_state.cursor + $1, finished_at = now()""",
                len(ids))
        return len(ids)


async def mine_stats(pool: asyncpg.Pool, batch: int, budget_s: float) -> tuple[int, bool]:
    """Batches until nothing is left or the time budget is spent: (rows folded, more left)."""
    deadline = time.monotonic() + budget_s
    total = 0
    while True:
        done = await mine_stats_batch(pool, batch)
        if done is None:
            return total, False  # someone else is at it
        total += done
        if done < batch:
            return total, False
        if time.monotonic() >= deadline:
            return total, True


async def mine_patterns(pool: asyncpg.Pool, cfg: IntelligenceConfig) -> dict[str, int] | None:
    """Recompute every pattern kind over the window; counts per kind, or None when another replica is at it."""
    counts: dict[str, int] = {}
    async with pool.acquire() as conn:
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_PATTERNS):
                return None
            round_no = await _next_round(conn, "patterns")
        window = cfg.pattern_window_s
        opposites = [f"{a}>{b}" for a, b in OPPOSITES] + [f"{b}>{a}" for a, b in OPPOSITES]
        plans: list[tuple[str, str, tuple[Any, ...]]] = [
            ("recurring", RECURRING_SQL, (window, cfg.recurring_min, round_no)),
            ("ineffective_chain", CHAINS_SQL, (window, cfg.chain_length, round_no)),
            ("oscillation", OSCILLATION_SQL, (window, opposites, cfg.oscillation_window_s, round_no)),
            ("harmful", HARMFUL_SQL, (window, cfg.harmful_window_s, cfg.harmful_min_cases, 0.3, round_no)),
        ]
        for kind, sql, args in plans:
            # One swap per kind: readers see the previous set or the new one, never half of each.
            async with conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_PATTERNS):
                    return None
                # Window sorts over the whole history: in memory, not in temporary files (one miner at a time).
                await conn.execute(f"SET LOCAL work_mem = '{_PATTERN_WORK_MEM}'")
                await conn.execute("DELETE FROM patterns WHERE kind = $1", kind)
                status = await conn.execute(sql, *args)
                counts[kind] = int(status.split()[-1])
        await conn.execute(
            "UPDATE mining_state SET detail = $2, finished_at = now() WHERE task = $1", "patterns", counts)
    return counts


async def embed_new_incidents(pool: asyncpg.Pool, embedder: Embedder, limit: int = 100) -> int:
    """Embed incidents past the sweep's cursor (each once; outcome updates come through ``embed`` jobs)."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_EMBED):
            return 0
        cursor = await conn.fetchval("SELECT cursor FROM mining_state WHERE task = 'embed'") or 0
        rows = await conn.fetch(
            """SELECT i.id, i.created_at < now() - make_interval(secs => $3) AS settled,
                      EXISTS (SELECT 1 FROM analyses a WHERE a.incident_id = i.id) AS analysed
               FROM incidents i WHERE i.id > $1 ORDER BY i.id LIMIT $2""",
            cursor, limit, _EMBED_SETTLE_S)
        done = 0
        for row in rows:
            if not (row["analysed"] or row["settled"]):
                break  # wait for its analysis: the description needs the facts
            try:
                await upsert_incident(pool, embedder, row["id"])
            except EmbeddingError as exc:
                logger.warning("embedding incident %s failed: %s", row["id"], exc)
                break
            cursor = row["id"]
            done += 1
        await conn.execute(
            """INSERT INTO mining_state (task, cursor, finished_at) VALUES ('embed', $1, now())
               ON CONFLICT (task) DO UPDATE SET cursor = EXCLUDED.cursor, finished_at = now()""", cursor)
    return done


async def mining_round(pool: asyncpg.Pool, cfg: IntelligenceConfig, embedder: Embedder | None) -> dict[str, Any]:
    """One round: statistics (bounded by the time budget), patterns, embeddings. ``more`` asks for another
    round at once (statistics were left over)."""
    started = time.monotonic()
    folded, more = await mine_stats(pool, cfg.mining_batch, cfg.mining_round_budget_s)
    result: dict[str, Any] = {"stats_rows": folded, "more": more}
    if not more:
        result["patterns"] = await mine_patterns(pool, cfg)
        if embedder is not None:
            result["embedded"] = await embed_new_incidents(pool, embedder)
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


async def retention(pool: asyncpg.Pool, storage: StorageConfig, cfg: IntelligenceConfig) -> float | None:
    """One retention round (kubernaut/storage/retention.py); seconds until the next, None when retention is off.
    Assessed actions are kept for the pattern window as well: the patterns and the per-workload history
    read them over that window."""
    if storage.retention_days is None:
        return None
    now = datetime.now(timezone.utc)
    result = await retention_round(
        pool, older_than=now - timedelta(days=storage.retention_days),
        keep_assessed_since=now - timedelta(seconds=cfg.pattern_window_s),
        batch=storage.retention_batch, budget_s=cfg.mining_round_budget_s)
    logger.info("retention round: %s", result)
    return 0.1 if result is not None and result["more"] else storage.retention_interval_s
