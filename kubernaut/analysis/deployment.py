"""AI Analysis: root cause and a validated catalog action for each new incident."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.analysis import second_opinion
from kubernaut.analysis.cluster_wait import ClusterWait
from kubernaut.analysis.dry import analyze_webhook
from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.facts import Situation
from kubernaut.analysis.learning import HandleIntelligence, Learner
from kubernaut.analysis.rules import load_rules
from kubernaut.analysis.tools.builtin import ToolScope, default_registry, scope_factory
from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.cluster.fleet import Fleet, UnknownCluster, api_or_unknown
from kubernaut.config.settings import KubernautConfig
from kubernaut.context.holmes import HolmesClient
from kubernaut.context.provider import ContextProvider
from kubernaut.models.analysis import AnalysisResult
from kubernaut.models.jobs import AnalysisRef, IncidentRef, JobKind
from kubernaut.observability import metrics
from kubernaut.processing.owners import OwnerResolver
from kubernaut.serving import ReplicaBase, wake
from kubernaut.storage import alerts, analyses, audit, incidents, jobs
from kubernaut.storage.jobs import Job

if TYPE_CHECKING:
    from kubernaut.analysis.llm.analyzer import LLMAnalyzer

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
        self._fleet: Fleet | None = None
        if config.fleet.clusters:
            self._fleet = await asyncio.to_thread(Fleet.build, config, read_retries=0)
        self._llm: LLMAnalyzer | None = None
        self._llm_error: str | None = None
        if cfg.llm_enabled:
            # Imported here: the openai SDK is ~20 MB of every replica's memory, used only with an LLM.
            from kubernaut.analysis.llm.analyzer import LLMAnalyzer
            from kubernaut.analysis.llm.providers import ProviderConfigError

            try:
                self._llm = LLMAnalyzer(cfg, budget_pool=self.db.pool, tools=default_registry(),
                                        tool_scope=investigation_scope(config, cluster, self._fleet))
            except (ProviderConfigError, ValueError) as exc:
                # Misconfigured LLM: run on the rules and say so in llm_status() rather than crash-loop.
                self._llm_error = str(exc)
                logger.error("LLM disabled: %s", exc)
        # Measured outcomes re-rank the rules' candidates and give the LLM the history (when intelligence runs).
        learner = Learner(cfg, HandleIntelligence(intelligence)) \
            if intelligence is not None and cfg.learning_enabled else None
        context = ContextProvider(config, cluster, self.db.pool)
        self._analyzer = Analyzer(cfg, self._rules, context, self._llm, learner)
        # A fleet: each incident is analysed with the live context of its own cluster.
        self._analyzers: dict[str, Analyzer] = {}
        # /api/v1/analyze in a fleet: each alert's owner looked up on its own cluster, as the processor does.
        self._fleet_owners: dict[str, OwnerResolver] = {}
        if self._fleet is not None:
            fleet = self._fleet
            for name, member in fleet.members.items():
                provider = ContextProvider(config, member.connection, self.db.pool, api=member.api,
                                           managed_namespaces=member.execution.managed_namespaces,
                                           cluster_name=name)
                self._analyzers[name] = Analyzer(cfg, self._rules, provider, self._llm, learner, cluster=name)
                self._fleet_owners[name] = OwnerResolver(
                    member.api, name, ttl_s=config.processing.owner_cache_ttl_s,
                    timeout_s=config.processing.kube_timeout_s)
            # Rotated credentials (a kubeconfig file or Secret) are picked up while the replica runs.
            self._fleet_watch = asyncio.get_running_loop().create_task(fleet.watch())
            self._analyzers[""] = Analyzer(cfg, self._rules, ContextProvider(
                config, ClusterConnection(None, "none", "the incident's cluster is not configured"), self.db.pool),
                self._llm, learner)
        self._cluster_wait = ClusterWait(self._fleet, config.fleet.unreachable_escalate_after_s)
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
        handlers = {JobKind.ANALYZE: self._analyze_incident}
        if self._holmes is not None:
            handlers[JobKind.SECOND_OPINION] = self._second_opinion
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
        incident_id = job.payload(IncidentRef).incident_id
        started = time.perf_counter()
        incident = await incidents.subject(self.db.pool, incident_id)
        if incident is None:
            return
        await self._cluster_wait.check(self.db.pool, incident_id, incident.cluster)
        received = await alerts.of_incident(self.db.pool, incident_id)
        if not received:
            return
        latest = await analyses.latest(self.db.pool, incident_id)
        result: AnalysisResult | None = None
        if latest is None or _new_signal_since(received, latest.created_at):
            # Only a first run (or a re-analysis after a new alert name joined) pays for context and the LLM;
            # a re-run after a crash finds the committed analysis and only re-sends the hand-off.
            analyzer = self._analyzers.get(incident.cluster or self.config.home_cluster, self._analyzers.get("")) \
                if self._analyzers else self._analyzer
            result = await analyzer.analyze([alerts.to_signal(a) for a in received], incident.target,
                                                  incident_id)
        latency_ms = (time.perf_counter() - started) * 1000
        async with self.db.pool.acquire() as conn, conn.transaction():
            # A holder whose lease was lost (another replica runs the job now) writes nothing.
            await jobs.fence(conn)
            # Serialize with a concurrent run of the same job (lease expiry): one new row at most.
            await incidents.lock(conn, incident_id)
            current = await analyses.latest(conn, incident_id)
            current_id = analysis_id = current.id if current else None
            if result is not None and current_id == (latest.id if latest else None):
                analysis_id = await analyses.insert(conn, incident_id, result, latency_ms)
                await incidents.set_phase(conn, incident_id, "analyzed")
                await audit.append(conn, "analysis", "analysis.completed", incident_id,
                                   _audit_detail(analysis_id, result))
            if analysis_id is not None:
                await jobs.enqueue(conn, JobKind.WORKFLOW, AnalysisRef(analysis_id=analysis_id))
            if self._holmes is not None and analysis_id is not None and analysis_id != current_id:
                await jobs.enqueue(conn, JobKind.SECOND_OPINION, AnalysisRef(analysis_id=analysis_id))
        wake(self._orchestrator)
        if result is not None:
            metrics.analysis_completed(
                result.engine, "fallback" if result.fallback_reason else "ok", latency_ms / 1000,
                model=result.llm.model if result.llm else None,
                cost_usd=(result.llm.cost_usd or 0.0) if result.llm else 0.0)

    async def _second_opinion(self, job: Job) -> None:
        assert self._holmes is not None
        await second_opinion.record(self.db.pool, self._holmes, self._context, job.payload(AnalysisRef).analysis_id)

    async def _gave_up(self, job: Job, error: str) -> None:
        if job.kind is JobKind.SECOND_OPINION:
            return  # advisory: the incident goes on without it
        incident_id = job.payload(IncidentRef).incident_id
        metrics.analysis_failed("llm" if self.config.analysis.llm_enabled else "rules")
        async with self.db.pool.acquire() as conn, conn.transaction():
            await incidents.set_phase(conn, incident_id, "analysis_failed")
            await audit.append(conn, "analysis", "analysis.failed", incident_id, {"error": error})

    async def analyze_payload(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Analysis only (``POST /api/v1/analyze``): what would be decided, nothing stored or done. In a fleet each
        alert is analysed on the cluster its label names (the gateway refused unknown ones; here they fail)."""
        if self._fleet is None:
            results = await analyze_webhook(self._analyzer, self._owners, payload)
            return [r.model_dump(mode="json") for r in results]
        by_cluster: dict[str, list[Any]] = {}
        for alert in payload.get("alerts") or []:
            by_cluster.setdefault(self._fleet.cluster_of(alert.get("labels") or {}), []).append(alert)
        answers: list[dict[str, Any]] = []
        for name, group in by_cluster.items():
            if name not in self._analyzers or name not in self._fleet_owners:
                raise UnknownCluster(f"cluster {name!r} is not configured")
            results = await analyze_webhook(self._analyzers[name], self._fleet_owners[name],
                                            {**payload, "alerts": group})
            answers.extend({**r.model_dump(mode="json"), "cluster": name} for r in results)
        return answers


def investigation_scope(config: KubernautConfig, cluster: ClusterConnection, fleet: Fleet | None
                        ) -> Callable[[Situation], ToolScope]:
    """What the investigation's read-only tools (analysis.llm_tools) read: this replica's ClusterAPI on one
    cluster; in a fleet, the client of the incident's own cluster (``Situation.cluster``), never the home
    cluster's for another: an incident whose cluster is not configured reads no cluster at all."""
    if fleet is None:
        api = ClusterAPI(cluster.api_client, config.kubernetes.request_timeout_s, read_retries=0) \
            if cluster.available else None
        return scope_factory(config, api)

    def reader(name: str | None) -> ClusterAPI | None:
        return api_or_unknown(fleet, name) if name else None

    return scope_factory(config, None, cluster_api=reader)


def _new_signal_since(received: list[alerts.ReceivedAlert], analysed_at: datetime) -> bool:
    """An alert name that was not there when the incident was last analysed (re-analysis on a new signal)."""
    before = {a.alertname for a in received if a.received_at <= analysed_at}
    return any(a.alertname not in before for a in received if a.received_at > analysed_at)


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
