"""AI Analysis: root cause and a validated catalog action for each new incident."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.analysis import second_opinion
from kubernaut.analysis.dry import analyze_webhook
from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.learning import HandleIntelligence, Learner
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.analysis.llm.providers import ProviderConfigError
from kubernaut.analysis.rules import load_rules
from kubernaut.cluster.client import connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.context.holmes import HolmesClient
from kubernaut.context.provider import ContextProvider
from kubernaut.models.analysis import AnalysisResult
from kubernaut.models.resource import ResourceRef
from kubernaut.observability import metrics
from kubernaut.processing.deployment import signal_from_row
from kubernaut.processing.owners import OwnerResolver
from kubernaut.serving import ReplicaBase, nudge
from kubernaut.storage import audit, incidents, jobs
from kubernaut.storage.jobs import Job

logger = logging.getLogger(__name__)


@serve.deployment(name="analysis")
class AnalysisService(ReplicaBase):
    service_name = "analysis"

    async def __init__(self, config: KubernautConfig, orchestrator: DeploymentHandle,
                       intelligence: DeploymentHandle | None = None) -> None:
        await self._setup(config)
        cfg = config.analysis
        self._rules = load_rules(*cfg.all_rules_files)
        cluster = await asyncio.to_thread(connect, config.kubernetes)
        self._llm: LLMAnalyzer | None = None
        self._llm_error: str | None = None
        if cfg.llm_enabled:
            try:
                self._llm = LLMAnalyzer(cfg, budget_pool=self.db.pool)
            except (ProviderConfigError, ValueError) as exc:
                # Misconfigured LLM: run on the rules and say so in llm_status() rather than crash-loop.
                self._llm_error = str(exc)
                logger.error("LLM disabled: %s", exc)
        # Measured outcomes re-rank the rules' candidates and give the LLM the history (when intelligence runs).
        learner = Learner(cfg, HandleIntelligence(intelligence)) \
            if intelligence is not None and cfg.learning_enabled else None
        context = ContextProvider(config, cluster, self.db.pool)
        self._analyzer = Analyzer(cfg, self._rules, context, self._llm, learner)
        # The same owner lookup as the processor, so /api/v1/analyze groups alerts into the incidents
        # the processor would form.
        self._owners = OwnerResolver(cluster.api_client if cluster.available else None, config.cluster_name,
                                     ttl_s=config.processing.owner_cache_ttl_s,
                                     timeout_s=config.processing.kube_timeout_s)
        self._orchestrator = orchestrator
        self._context = context
        # Optional HolmesGPT second opinion on each new analysis: its own job, never on the decision's path.
        self._holmes = HolmesClient(config.holmes, config.cluster_name) \
            if config.holmes.enabled and config.holmes.in_analysis else None
        handlers = {"analyze": self._analyze_incident}
        if self._holmes is not None:
            handlers[second_opinion.JOB] = self._second_opinion
        self._start_worker(handlers, on_give_up=self._gave_up)

    async def llm_status(self) -> dict[str, Any]:
        """For /ready, /api/v1/info and metrics: which engine decides and whether the LLM is reachable.

        ``degraded`` is true while a configured LLM cannot be used (misconfigured or circuit open):
        analyses continue on the rules, so it is a warning, not a reason to be unready.
        """
        rules = {"sources": self._rules.sources, "rules": len(self._rules.rules), "guards": len(self._rules.guards)}
        if self._llm is None:
            return {"engine": "rules", "enabled": False, "degraded": self._llm_error is not None,
                    "error": self._llm_error, "rules": rules}
        status = self._llm.status()
        return {"engine": f"llm:{self._llm.models[0]}", "degraded": not status["available"], "rules": rules,
                **status}

    async def _analyze_incident(self, job: Job) -> None:
        incident_id = job.ref_id
        started = time.perf_counter()
        incident = await self.db.pool.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
        if incident is None:
            return
        rows = await self.db.pool.fetch("SELECT * FROM alerts WHERE incident_id = $1 ORDER BY id", incident_id)
        if not rows:
            return
        latest = await self.db.pool.fetchrow(
            "SELECT id, created_at FROM analyses WHERE incident_id = $1 ORDER BY id DESC LIMIT 1", incident_id)
        result: AnalysisResult | None = None
        if latest is None or _new_signal_since(rows, latest["created_at"]):
            # Only a first run (or a re-analysis after a new alert name joined) pays for context and the LLM;
            # a re-run after a crash finds the committed analysis and only re-sends the hand-off.
            target = ResourceRef(kind=incident["target_kind"], name=incident["target_name"],
                                 namespace=incident["target_namespace"])
            result = await self._analyzer.analyze([signal_from_row(r) for r in rows], target, incident_id)
        latency_ms = (time.perf_counter() - started) * 1000
        async with self.db.pool.acquire() as conn, conn.transaction():
            # A holder whose lease was lost (another replica runs the job now) writes nothing.
            await jobs.fence(conn)
            # Serialize with a concurrent run of the same job (lease expiry): one new row at most.
            await conn.execute("SELECT id FROM incidents WHERE id = $1 FOR UPDATE", incident_id)
            current = await conn.fetchval(
                "SELECT id FROM analyses WHERE incident_id = $1 ORDER BY id DESC LIMIT 1", incident_id)
            analysis_id = current
            if result is not None and current == (latest["id"] if latest else None):
                analysis_id = await _insert(conn, incident_id, result, latency_ms)
                await incidents.set_phase(conn, incident_id, "analyzed")
                await audit.append(conn, "analysis", "analysis.completed", incident_id,
                                   _audit_detail(analysis_id, result))
            if analysis_id is not None:
                await jobs.enqueue(conn, "orchestrate", analysis_id)
            if self._holmes is not None and analysis_id is not None and analysis_id != current:
                await jobs.enqueue(conn, second_opinion.JOB, analysis_id)
        nudge(self._orchestrator)
        if result is not None:
            metrics.analysis_completed(
                result.engine, "fallback" if result.fallback_reason else "ok", latency_ms / 1000,
                model=result.llm.model if result.llm else None,
                cost_usd=(result.llm.cost_usd or 0.0) if result.llm else 0.0)

    async def _second_opinion(self, job: Job) -> None:
        assert self._holmes is not None
        await second_opinion.record(self.db.pool, self._holmes, self._context, job.ref_id)

    async def _gave_up(self, job: Job, error: str) -> None:
        if job.kind == second_opinion.JOB:
            return  # advisory: the incident goes on without it
        metrics.analysis_failed("llm" if self.config.analysis.llm_enabled else "rules")
        async with self.db.pool.acquire() as conn, conn.transaction():
            await incidents.set_phase(conn, job.ref_id, "analysis_failed")
            await audit.append(conn, "analysis", "analysis.failed", job.ref_id, {"error": error})

    async def analyze_payload(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Analysis only (``POST /api/v1/analyze``): what would be decided, nothing stored or done."""
        results = await analyze_webhook(self._analyzer, self._owners, payload)
        return [r.model_dump(mode="json") for r in results]


def _new_signal_since(rows: list[Any], analysed_at: Any) -> bool:
    """An alert name that was not there when the incident was last analysed (re-analysis on a new signal)."""
    before = {r["alertname"] for r in rows if r["received_at"] <= analysed_at}
    return any(r["alertname"] not in before for r in rows if r["received_at"] > analysed_at)


async def _insert(conn: Any, incident_id: int, result: AnalysisResult, latency_ms: float) -> int:
    llm = result.llm
    return await conn.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause,
                                 alternatives, rule_id, reasoning, fallback_reason, latency_ms,
                                 llm_provider, llm_model, llm_calls, prompt_tokens, completion_tokens,
                                 llm_latency_ms, cost_usd, llm, flags, facts, findings, justified_by)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)
           RETURNING id""",
        incident_id, result.engine, result.action, result.parameters, result.target.model_dump(),
        result.confidence, result.root_cause, [a.model_dump() for a in result.alternatives], result.rule_id,
        result.reasoning, result.fallback_reason, latency_ms,
        llm.provider if llm else None, llm.model if llm else None, llm.calls if llm else None,
        llm.prompt_tokens if llm else None, llm.completion_tokens if llm else None,
        llm.latency_ms if llm else None, llm.cost_usd if llm else None,
        llm.model_dump(mode="json") if llm else None, result.flags, result.facts,
        [f.model_dump(mode="json") for f in result.findings], result.justified_by,
    )


def _audit_detail(analysis_id: int, result: AnalysisResult) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "analysis_id": analysis_id, "engine": result.engine, "action": result.action, "target": str(result.target),
        "confidence": result.confidence, "rule_id": result.rule_id, "justified_by": result.justified_by,
        "findings": [f.kind.value for f in result.findings],
    }
    if result.fallback_reason:
        detail["fallback_reason"] = result.fallback_reason
    if result.flags:
        detail["flags"] = result.flags  # rejected out-of-policy answers: reviewable in the audit trail
    if result.llm is not None:
        detail["llm"] = {"model": result.llm.model, "tokens": result.llm.prompt_tokens + result.llm.completion_tokens,
                         "cost_usd": result.llm.cost_usd}
    return detail
