"""Pattern mining in PostgreSQL, where the history is: set-based SQL (kubernaut/storage/learning.py,
kubernaut/storage/patterns.py), never row-by-row Python.

A mining round has three parts, each in short transactions of its own so ingest is never blocked
(plain reads take no locks the writers wait for, and the only rows written are the miner's own):

1. **statistics** — final assessments not yet counted (``mining_inbox``) are folded into
   ``action_stats`` in batches. Each batch deletes its inbox rows and adds their counts in one
   statement, so a crash between batches loses nothing and counts nothing twice, and the next round
   on any replica resumes there;
2. **patterns** — recurring incidents, ineffective chains, oscillation and harmful side effects are
   recomputed over a window and swapped into ``patterns`` per kind;
3. **embeddings** — incidents that have none yet are embedded (see :mod:`.similarity`).

A transaction-level advisory lock per part (``MiningLock``) keeps two replicas from doing the same part at once.
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
from kubernaut.storage import incident_embeddings, learning, patterns
from kubernaut.storage.retention import retention_round

logger = logging.getLogger(__name__)

# Actions that undo each other (as kubernaut.orchestration.blocking): alternating them is oscillation.
OPPOSITES = (("cordon_node", "uncordon_node"), ("pause_rollout", "resume_rollout"),
             ("suspend_cronjob", "resume_cronjob"), ("taint_node", "remove_taint"))
# A new incident this young may still be waiting for its analysis: the embedding sweep waits for it.
_EMBED_SETTLE_S = 600.0
# A harmful action: new alerts follow at least this share of its executions (and 1.5 times the baseline rate).
_HARMFUL_MIN_RATE = 0.3


async def mine_stats(pool: asyncpg.Pool, batch: int, budget_s: float) -> tuple[int, bool]:
    """Batches until nothing is left or the time budget is spent: (rows folded, more left)."""
    deadline = time.monotonic() + budget_s
    total = 0
    while True:
        done = await learning.fold_batch(pool, batch)
        if done is None:
            return total, False  # someone else is at it
        total += done
        if done < batch:
            return total, False
        if time.monotonic() >= deadline:
            return total, True


async def mine_patterns(pool: asyncpg.Pool, cfg: IntelligenceConfig) -> dict[str, int] | None:
    """Recompute every pattern kind over the window; counts per kind, or None when another replica is at it."""
    return await patterns.recompute(
        pool, window_s=cfg.pattern_window_s, recurring_min=cfg.recurring_min, chain_length=cfg.chain_length,
        opposites=OPPOSITES, oscillation_window_s=cfg.oscillation_window_s, harmful_window_s=cfg.harmful_window_s,
        harmful_min_cases=cfg.harmful_min_cases, harmful_min_rate=_HARMFUL_MIN_RATE)


async def embed_new_incidents(pool: asyncpg.Pool, embedder: Embedder, limit: int = 100) -> int:
    """Embed incidents past the sweep's cursor (each once; outcome updates come through ``embed`` jobs)."""
    async with learning.exclusive(pool, learning.MiningLock.EMBED) as conn:
        if conn is None:
            return 0
        cursor = await learning.cursor(conn, "embed")
        done = 0
        for incident in await incident_embeddings.pending(conn, cursor, limit, _EMBED_SETTLE_S):
            if not (incident.analysed or incident.settled):
                break  # wait for its analysis: the description needs the facts
            try:
                await upsert_incident(pool, embedder, incident.id)
            except EmbeddingError as exc:
                logger.warning("embedding incident %s failed: %s", incident.id, exc)
                break
            cursor = incident.id
            done += 1
        await learning.set_cursor(conn, "embed", cursor)
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
