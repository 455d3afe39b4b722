"""Intelligence: what history says about (alert signature, action) pairs, and which incidents look alike.

Work runs as durable jobs claimed by any replica (kubernaut.models.jobs): ``mine`` (one periodic job that
reschedules itself), ``retention`` (likewise, when ``storage.retention_days`` is set: one row, so one replica at
a time) and ``embed`` (an incident, woken when an assessment completes). The methods below are
the feedback the other deployments read.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from ray import serve

from kubernaut.config.settings import KubernautConfig
from kubernaut.intelligence import feedback, report
from kubernaut.intelligence.embeddings import EmbeddingError, make_embedder
from kubernaut.intelligence.mining import mining_round, retention
from kubernaut.intelligence.similarity import upsert_incident
from kubernaut.models.jobs import IncidentRef, JobKind, Singleton
from kubernaut.serving import ReplicaBase
from kubernaut.storage import jobs
from kubernaut.storage.jobs import Job, Reschedule, RetryLater

logger = logging.getLogger(__name__)

async def retention_job(pool: asyncpg.Pool, config: KubernautConfig, error_delay_s: float = 30.0) -> None:
    """The ``retention`` job's body: one round, then again after the interval (ends when retention is off)."""
    try:
        delay = await retention(pool, config.storage, config.intelligence)
    except Exception:
        logger.exception("retention round failed")
        raise Reschedule(min(error_delay_s, 30.0), "retention round failed") from None
    if delay is not None:
        raise Reschedule(delay, "next retention round")


@serve.deployment(name="intelligence")
class IntelligenceService(ReplicaBase):
    service_name = "intelligence"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self.cfg = config.intelligence
        self.embedder = make_embedder(self.cfg)
        # The periodic job exists once; a replica starting revives it if it ever ended.
        await jobs.requeue(self.db.pool, JobKind.MINE, Singleton())
        if config.storage.retention_days is not None:
            await jobs.requeue(self.db.pool, JobKind.RETENTION, Singleton())
        self._start_worker({JobKind.MINE: self._mine, JobKind.EMBED: self._embed, JobKind.RETENTION: self._retain})

    async def _mine(self, job: Job) -> None:
        try:
            result = await mining_round(self.db.pool, self.cfg, self.embedder)
        except Exception:
            # Never let the periodic job fail for good: try again later.
            logger.exception("mining round failed")
            raise Reschedule(min(self.cfg.mining_interval_s, 30.0), "mining round failed") from None
        logger.debug("mining round: %s", result)
        raise Reschedule(0.1 if result["more"] else self.cfg.mining_interval_s, "next mining round")

    async def _retain(self, job: Job) -> None:
        await retention_job(self.db.pool, self.config, self.cfg.mining_interval_s)

    async def _embed(self, job: Job) -> None:
        try:
            await upsert_incident(self.db.pool, self.embedder, job.payload(IncidentRef).incident_id)
        except EmbeddingError as exc:
            raise RetryLater(str(exc), delay_s=10.0) from None

    # --- API -------------------------------------------------------------------------------------

    async def patterns(self, limit: int = 100) -> dict[str, Any]:
        """Everything for ``GET /api/v1/patterns``: action statistics, mined patterns, mining progress."""
        return await report.patterns_report(self.db.pool, limit)

    # --- feedback --------------------------------------------------------------------------------

    async def ranking(self, signature: str, candidate_actions: list[str], incident_id: int | None = None,
                      priors: dict[str, float] | None = None,
                      prior_cases: float | None = None) -> list[dict[str, Any]]:
        scope = await feedback.scope_of(self.db.pool, incident_id, self.config.home_cluster,
                                        bool(self.config.fleet.clusters), self.config.fleet.prior_cases)
        ranked = await feedback.ranking(
            self.db.pool, signature, candidate_actions, incident_id=incident_id, priors=priors,
            prior_cases=self.cfg.ranking_prior_cases if prior_cases is None else prior_cases,
            ef_search=self.cfg.hnsw_ef_search, scope=scope)
        return [r.model_dump(mode="json") for r in ranked]

    async def context_for(self, incident_id: int, k: int = 5) -> dict[str, Any] | None:
        context = await feedback.context_for(self.db.pool, incident_id, self.embedder, k=k,
                                             ef_search=self.cfg.hnsw_ef_search,
                                             min_similarity=self.cfg.similar_min_similarity)
        return context.model_dump(mode="json") if context is not None else None
