"""Scenarios side by side: setup → alert → analysis → grade → teardown, each under a concurrency limit.

The analysis runs in-process by default (exactly ``POST /api/v1/analyze``'s code path,
:func:`kubernaut.analysis.dry.analyze_webhook`, with no database), or against a running Kubernaut
(``url``). A scenario that cannot be set up or analysed is recorded as ``error`` with the reason;
nothing a scenario does stops the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from kubernaut.evaluation.cluster import Cluster, PrivateNodes, ScenarioEnv, SetupError, finish, in_thread
from kubernaut.evaluation.grading import Grade, Recall, grade, recall
from kubernaut.evaluation.scenario import Scenario
from kubernaut.models.alertmanager import label_fingerprint

if TYPE_CHECKING:
    from kubernaut.config.settings import AnalysisConfig

logger = logging.getLogger(__name__)

Engine = Literal["rules", "llm"]
# ``both``: one setup per scenario, the same alerts analysed by the rules and by the LLM, graded side by side.
EngineChoice = Literal["rules", "llm", "both"]
SETUP_TIMEOUT_S = 300.0
ANALYSIS_TIMEOUT_S = 180.0
# Beyond the LLM's own time budget, for the context and the rules: the analyzer's budget hands over to the rules;
# the runner's limit must not cut it short (a slow model would read as an error instead of a fallback).
LLM_MARGIN_S = 60.0


class EvalConfigError(RuntimeError):
    """The run cannot start (no LLM configured for --engine llm, unusable kubeconfig, ...)."""


class RunOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kubeconfig: str
    engine: EngineChoice = "rules"
    url: str | None = None
    token: str | None = None
    concurrency: int = Field(default=8, ge=1, le=64)
    setup_timeout_s: float = Field(default=SETUP_TIMEOUT_S, gt=0)
    # None: the backend's own (ANALYSIS_TIMEOUT_S; for the in-process LLM at least its time budget + LLM_MARGIN_S).
    analysis_timeout_s: float | None = Field(default=None, gt=0)


class ScenarioRecord(BaseModel):
    """What one scenario did and got; ``analysis`` is the answer as the API returns it."""

    id: str
    title: str
    scenario_class: str
    namespace: str
    nodes: list[str] = Field(default_factory=list)
    grade: Grade = "error"
    action: str | None = None
    target: dict[str, Any] | None = None
    engine: str | None = None
    confidence: float | None = None
    root_cause: str | None = None
    recall: Recall | None = None
    error: str | None = None
    setup_s: float = 0.0
    analysis_s: float = 0.0
    seconds: float = 0.0
    teardown_problems: list[str] = Field(default_factory=list)
    webhook: dict[str, Any] | None = None
    analysis: dict[str, Any] | None = None
    analyses: int = 0
    run_engine: Engine = Field(default="rules", description="the engine asked (with --engine both, one record "
                                                            "per engine and scenario)")

    @property
    def llm_usage(self) -> dict[str, Any] | None:
        """The LLM usage the analysis recorded (also when the rules' fallback decided)."""
        usage = (self.analysis or {}).get("llm")
        return usage if isinstance(usage, dict) else None

    @property
    def recall_ratio(self) -> float | None:
        return self.recall.ratio if self.recall is not None else None


class RunResult(BaseModel):
    run_id: str
    started_at: datetime
    seconds: float
    engine: str
    mode: str
    kubeconfig: str
    concurrency: int
    records: list[ScenarioRecord]


class Progress(Protocol):
    def started(self, scenario: Scenario) -> None: ...

    def finished(self, record: ScenarioRecord) -> None: ...


# -------------------------------------------------------------------------------------------------
# analysis backends
# -------------------------------------------------------------------------------------------------
class AnalysisBackend(Protocol):
    description: str
    timeout_s: float  # how long the runner waits for an answer unless RunOptions.analysis_timeout_s says

    async def analyze(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


def answer_within_s(analysis: AnalysisConfig, llm: bool) -> float:
    """How long the runner waits for an in-process answer: the LLM's own time budget decides when it hands over
    to the rules, so the wait outlasts it."""
    return max(ANALYSIS_TIMEOUT_S, analysis.llm_incident_time_budget_s + LLM_MARGIN_S) if llm else ANALYSIS_TIMEOUT_S


class InProcessAnalysis:
    """The analysis deployment's objects built here: rules (and the LLM for ``engine="llm"``),
    live context from the cluster, no database."""

    def __init__(self, kubeconfig: str, engine: Engine) -> None:
        from kubernaut.analysis.engine import Analyzer
        from kubernaut.analysis.llm.analyzer import LLMAnalyzer
        from kubernaut.analysis.llm.providers import ProviderConfigError
        from kubernaut.analysis.rules import load_rules
        from kubernaut.analysis.tools.builtin import default_registry, scope_factory
        from kubernaut.cluster.api import ClusterAPI
        from kubernaut.cluster.client import connect
        from kubernaut.config.settings import KubernautConfig, KubernetesConfig
        from kubernaut.context.provider import ContextProvider
        from kubernaut.processing.owners import OwnerResolver

        config = KubernautConfig(kubernetes=KubernetesConfig(kubeconfig=Path(kubeconfig).expanduser().resolve()))
        llm: LLMAnalyzer | None = None
        if engine == "llm":
            if not config.analysis.llm_enabled:
                raise EvalConfigError(
                    "--engine llm needs an LLM: set KUBERNAUT_ANALYSIS__LLM_MODEL (and, as the provider needs, "
                    "KUBERNAUT_ANALYSIS__LLM_BASE_URL, KUBERNAUT_ANALYSIS__LLM_API_KEY, "
                    "KUBERNAUT_ANALYSIS__LLM_PROVIDER)")
        cluster = connect(config.kubernetes)
        if not cluster.available:
            raise EvalConfigError(f"analysis cannot reach the cluster: {cluster.reason}")
        if engine == "llm":
            # As the analysis deployment builds it: the investigation's tools when analysis.llm_tools allows.
            api = ClusterAPI(cluster.api_client, config.kubernetes.request_timeout_s, read_retries=0)
            try:
                llm = LLMAnalyzer(config.analysis, tools=default_registry(), tool_scope=scope_factory(config, api))
            except (ProviderConfigError, ValueError) as exc:
                raise EvalConfigError(f"LLM misconfigured: {exc}") from exc
        self._cluster = cluster
        self._llm = llm
        rules = load_rules(*config.analysis.all_rules_files)
        context = ContextProvider(config, cluster, None)
        self._analyzer = Analyzer(config.analysis, rules, context, llm)
        self._owners = OwnerResolver(cluster.api_client, config.cluster_name,
                                     ttl_s=config.processing.owner_cache_ttl_s,
                                     timeout_s=config.processing.kube_timeout_s)
        self.description = f"in-process ({'llm:' + str(config.analysis.llm_model) if llm else 'rules'})"
        self.timeout_s = answer_within_s(config.analysis, llm is not None)

    async def analyze(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        from kubernaut.analysis.dry import analyze_webhook

        results = await analyze_webhook(self._analyzer, self._owners, body)
        return [r.model_dump(mode="json") for r in results]

    async def close(self) -> None:
        if self._llm is not None:
            with contextlib.suppress(Exception):
                await self._llm.client.close()
        if self._cluster.api_client is not None:
            await in_thread(self._cluster.api_client.close)


class HttpAnalysis:
    """``POST {url}/api/v1/analyze`` of a running Kubernaut (which must see the same cluster)."""

    def __init__(self, url: str, token: str | None, timeout_s: float = ANALYSIS_TIMEOUT_S,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s,
                                         transport=transport)
        self.description = f"POST {url.rstrip('/')}/api/v1/analyze"
        self.timeout_s = timeout_s

    async def analyze(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self._client.post("/api/v1/analyze", json=body)
        if not response.is_success:
            raise RuntimeError(f"/api/v1/analyze answered {response.status_code}: {response.text[:500]}")
        analyses = response.json().get("analyses")
        if not isinstance(analyses, list):
            raise RuntimeError(f"/api/v1/analyze answered no 'analyses' list: {response.text[:500]}")
        return analyses

    async def close(self) -> None:
        await self._client.aclose()


def engines(options: RunOptions) -> list[Engine]:
    return ["rules", "llm"] if options.engine == "both" else [options.engine]


def make_backend(options: RunOptions, engine: Engine | None = None) -> AnalysisBackend:
    if options.url:
        if options.engine == "both":
            raise EvalConfigError("--engine both analyses in-process; a running Kubernaut (--url) has one engine")
        return HttpAnalysis(options.url, options.token, options.analysis_timeout_s or ANALYSIS_TIMEOUT_S)
    return InProcessAnalysis(options.kubeconfig, engine or engines(options)[0])


# -------------------------------------------------------------------------------------------------
# the AlertManager body
# -------------------------------------------------------------------------------------------------
def _go_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def webhook_body(alerts: Sequence[dict[str, Any]], now: datetime | None = None) -> dict[str, Any]:
    """An AlertManager webhook v4 body for ``alerts`` (``{labels, annotations, status}``, already
    substituted): one fingerprint per alert, ``startsAt`` now, common labels as AlertManager computes."""
    now = now or datetime.now(timezone.utc)
    items = []
    for alert in alerts:
        labels = dict(alert["labels"])
        status = alert.get("status", "firing")
        items.append({
            "status": status,
            "labels": labels,
            "annotations": dict(alert.get("annotations") or {}),
            "startsAt": _go_time(now),
            "endsAt": _go_time(now) if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus:9090/graph?g0.expr=ALERTS%7Balertname%3D%22{labels['alertname']}%22%7D",
            "fingerprint": label_fingerprint(labels),
        })

    def common(key: str) -> dict[str, str]:
        maps = [item[key] for item in items]
        return {k: v for k, v in maps[0].items() if all(m.get(k) == v for m in maps[1:])}

    common_labels = common("labels")
    group = {k: common_labels[k] for k in ("alertname", "namespace") if k in common_labels}
    return {
        "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
        "receiver": "kubernaut",
        "groupLabels": group,
        "commonLabels": common_labels,
        "commonAnnotations": common("annotations"),
        "externalURL": "http://alertmanager:9093",
        "alerts": items,
    }


def pick_analysis(analyses: list[dict[str, Any]], namespace: str) -> dict[str, Any] | None:
    """The answer about the scenario: the first whose target is in its namespace, else the first."""
    for analysis in analyses:
        if (analysis.get("target") or {}).get("namespace") == namespace:
            return analysis
    return analyses[0] if analyses else None


# -------------------------------------------------------------------------------------------------
# the run
# -------------------------------------------------------------------------------------------------
class Runner:
    def __init__(self, options: RunOptions, backend: AnalysisBackend | dict[Engine, AnalysisBackend] | None = None,
                 progress: Progress | None = None, run_id: str | None = None) -> None:
        self.options = options
        self.backends: dict[Engine, AnalysisBackend] | None = (
            backend if isinstance(backend, dict) or backend is None else {engines(options)[0]: backend})
        self.progress = progress
        self.run_id = run_id or secrets.token_hex(3)

    async def run(self, scenarios: Sequence[Scenario]) -> RunResult:
        started_at = datetime.now(timezone.utc)
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        # Setup calls, polling and the analysis' own API reads all run in threads: room for all of them.
        loop.set_default_executor(ThreadPoolExecutor(max_workers=max(32, 6 * self.options.concurrency),
                                                     thread_name_prefix="kubernaut-eval"))
        cluster = await in_thread(Cluster, self.options.kubeconfig)
        backends = self.backends
        owns_backend = backends is None
        private = PrivateNodes(cluster, self.run_id)
        records: list[ScenarioRecord] = []
        try:
            if backends is None:
                backends = {}
                for engine in engines(self.options):
                    backends[engine] = await in_thread(make_backend, self.options, engine)
            await in_thread(lambda: cluster.dynamic)  # discovery once, before anything runs
            owners = [s.id for s in scenarios for _ in range(s.nodes)]
            node_error: str | None = None
            names: list[str] = []
            try:
                names = await private.start(owners)
            except SetupError as exc:
                node_error = str(exc)
            assigned: dict[str, list[str]] = {}
            for owner, name in zip(owners, names, strict=False):
                assigned.setdefault(owner, []).append(name)
            limit = asyncio.Semaphore(self.options.concurrency)

            async def one(scenario: Scenario) -> list[ScenarioRecord]:
                async with limit:
                    if self.progress is not None:
                        self.progress.started(scenario)
                    done = await self.run_one(cluster, backends, scenario, assigned.get(scenario.id, []),
                                              node_error if scenario.nodes else None)
                    if self.progress is not None:
                        for record in done:
                            self.progress.finished(record)
                    return done

            records = [r for done in await asyncio.gather(*(one(s) for s in scenarios)) for r in done]
        finally:
            try:
                await finish(private.stop())
            finally:
                if owns_backend and backends:
                    for backend in backends.values():
                        await backend.close()
                await in_thread(cluster.close)
        return RunResult(
            run_id=self.run_id, started_at=started_at, seconds=round(time.monotonic() - started, 2),
            engine=self.options.engine,
            mode="; ".join(b.description for b in backends.values()) if backends else "?",
            kubeconfig=self.options.kubeconfig, concurrency=self.options.concurrency, records=records)

    async def run_one(self, cluster: Cluster, backends: dict[Engine, AnalysisBackend], scenario: Scenario,
                      nodes: list[str], node_error: str | None = None) -> list[ScenarioRecord]:
        """One setup, then the same alerts to each engine's analysis (graded separately), one teardown."""
        started = time.monotonic()
        env = ScenarioEnv(cluster, scenario, self.run_id, nodes)
        records = {engine: ScenarioRecord(id=scenario.id, title=scenario.title, scenario_class=scenario.class_,
                                          namespace=env.namespace, nodes=nodes, run_engine=engine)
                   for engine in backends}
        stage = "setup"
        try:
            if node_error is not None:
                raise SetupError(f"private nodes: {node_error}")
            try:
                await asyncio.wait_for(env.setup(), self.options.setup_timeout_s)
            except asyncio.TimeoutError:
                raise SetupError(f"not done after {self.options.setup_timeout_s:.0f}s") from None
            setup_s = round(time.monotonic() - started, 2)
            stage = "alert"
            alerts = await env.substitute_all([a.model_dump() for a in scenario.alerts])
            webhook = webhook_body(alerts)
            for record in records.values():
                record.setup_s, record.webhook = setup_s, webhook
            stage = "analysis"
            expect = scenario.expect
            resolved = False
            for engine, backend in backends.items():
                record = records[engine]
                stage = "analysis"
                await self._analyse(record, backend, env.namespace)
                if record.error is None:
                    stage = "grading"
                    if not resolved:
                        await env.resolve_pods(env.sub(expect.model_dump(), pods=False))
                        resolved = True
                    record.grade = grade(expect, str(record.action), record.target, env.name_variants)
        except SetupError as exc:
            for record in records.values():
                record.grade, record.error = "error", f"{stage}: {exc}"
        except Exception as exc:
            logger.debug("scenario %s failed in %s", scenario.id, stage, exc_info=True)
            for record in records.values():
                if record.error is None:
                    record.grade, record.error = "error", f"{stage}: {type(exc).__name__}: {exc}"
        finally:
            try:
                problems = await finish(env.teardown())
            except Exception as exc:
                problems = [f"{type(exc).__name__}: {exc}"]
            for record in records.values():
                record.teardown_problems = problems
        for record in records.values():
            record.recall = recall(scenario.expect.root_cause, record.analysis) if scenario.expect.root_cause else None
            record.seconds = round(time.monotonic() - started, 2)
        return list(records.values())

    async def _analyse(self, record: ScenarioRecord, backend: AnalysisBackend, namespace: str) -> None:
        """One engine's answer into ``record``; a failure is that engine's error, not the scenario's."""
        assert record.webhook is not None
        analysis_started = time.monotonic()
        try:
            timeout_s = self.options.analysis_timeout_s or getattr(backend, "timeout_s", ANALYSIS_TIMEOUT_S)
            try:
                analyses = await asyncio.wait_for(backend.analyze(record.webhook), timeout_s)
            except asyncio.TimeoutError:
                raise RuntimeError(f"no answer after {timeout_s:.0f}s") from None
            record.analysis_s = round(time.monotonic() - analysis_started, 2)
            record.analyses = len(analyses)
            answer = pick_analysis(analyses, namespace)
            if answer is None:
                raise RuntimeError("the analysis returned no result")
        except Exception as exc:
            logger.debug("scenario %s: %s analysis failed", record.id, record.run_engine, exc_info=True)
            record.grade, record.error = "error", f"analysis: {type(exc).__name__}: {exc}"
            return
        record.analysis = answer
        record.action = answer.get("action")
        record.target = answer.get("target")
        record.engine = answer.get("engine")
        record.confidence = answer.get("confidence")
        record.root_cause = answer.get("root_cause")


async def run_scenarios(scenarios: Sequence[Scenario], options: RunOptions, progress: Progress | None = None,
                        backend: AnalysisBackend | dict[Engine, AnalysisBackend] | None = None,
                        run_id: str | None = None) -> RunResult:
    return await Runner(options, backend, progress, run_id).run(scenarios)

