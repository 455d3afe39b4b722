"""Application metrics: one helper per event, exported through Ray's metrics API.

Why Ray's API (``ray.util.metrics``) and not a Prometheus client per replica: replicas come and go and
have no scrapeable address of their own. Metrics recorded through Ray are aggregated by the metrics
agent of the node the replica runs on and exposed on that node's Prometheus endpoint
(``--metrics-export-port``, 8080 on KubeRay pods), next to Ray's and Serve's own metrics — so one
PodMonitor scrapes everything. Ray prefixes every name with ``ray_`` and exports counters with a
``_total`` suffix: ``kubernaut_alerts_received`` is scraped as ``ray_kubernaut_alerts_received_total``.

Every record is mirrored in a process-local ``prometheus_client`` registry (unprefixed names,
``kubernaut_*``) that :func:`render_local` serves on the gateway's ``/metrics`` route: handy under
``serve run`` on a laptop, but per replica — Prometheus should scrape the Ray endpoint.

The helpers never raise: observability must not break the alert path. Label values are normalised and
capped per label (``other`` beyond :data:`MAX_LABEL_VALUES` distinct values) so a hostile or buggy
caller cannot explode the number of series; action names are checked against the catalog.

Gauges are per process (Ray adds a ``WorkerId`` label): aggregate them with ``max`` across replicas,
counters and histograms with ``sum``. Ray's metrics agent drops a gauge that has not been recorded for two
export intervals (so a dead replica's values age out); a background thread of this module therefore
re-records the last value of each gauge every half interval while the process lives.

See ``deploy/monitoring/METRICS.md`` (generated from :data:`METRICS` by ``scripts/gen-rayservice.py``).
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge as PromGauge
from prometheus_client import Histogram as PromHistogram

from kubernaut.models.jobs import JobKind

logger = logging.getLogger(__name__)

MetricKind = Literal["counter", "gauge", "histogram"]

#: Prefix Ray puts in front of every application metric on its Prometheus endpoint.
RAY_PREFIX = "ray_"
#: Distinct values one label may take in one process before further values are reported as ``other``.
MAX_LABEL_VALUES = 64
OTHER = "other"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
_ACTION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


# The ``cluster`` label of incident and action metrics: which cluster of a fleet (issue 16) the event is about.
_CLUSTER_VALUES = ("cluster", "the incident's cluster (fleet.clusters; cluster_name on a single cluster; none: "
                              "an incident from before the fleet)")


@dataclass(frozen=True)
class MetricSpec:
    """One application metric: the single source for recording, docs, dashboard and alert rules."""

    name: str  # as registered: no ``ray_`` prefix, no ``_total`` suffix
    kind: MetricKind
    description: str
    labels: tuple[str, ...] = ()
    boundaries: tuple[float, ...] = ()  # histograms only
    # Documented label values (informational; other values are accepted, normalised and capped).
    label_values: tuple[tuple[str, str], ...] = ()
    aggregation: Literal["sum", "max"] = "sum"  # how to combine replicas in PromQL

    @property
    def exported(self) -> str:
        """The name on Ray's Prometheus endpoint (counters: with ``_total``; histograms: the family)."""
        suffix = "_total" if self.kind == "counter" else ""
        return f"{RAY_PREFIX}{self.name}{suffix}"

    @property
    def series(self) -> tuple[str, ...]:
        """Every sample name this metric produces on Ray's endpoint."""
        if self.kind == "histogram":
            base = f"{RAY_PREFIX}{self.name}"
            return (f"{base}_bucket", f"{base}_count", f"{base}_sum")
        return (self.exported,)


METRICS: tuple[MetricSpec, ...] = (
    # -- gateway: ingest -------------------------------------------------------------------------------
    MetricSpec("kubernaut_alerts_received", "counter",
               "Alerts committed to the database by the gateway (durably accepted).",
               ("status",), label_values=(("status", "firing | resolved"),)),
    MetricSpec("kubernaut_alerts_rejected", "counter",
               "Webhook deliveries refused by the gateway (one per request; AlertManager retries 429/503).",
               ("reason",),
               label_values=(("reason",
                              "unauthorized | rate_limited | too_large | bad_json | invalid | unavailable"),)),
    MetricSpec("kubernaut_alerts_deduplicated", "counter",
               "Alerts that opened no new incident: redelivered by AlertManager, folded into an open incident, "
               "or collapsed into a storm.",
               ("kind",), label_values=(("kind", "redelivery | incident | storm"),)),
    MetricSpec("kubernaut_webhook_duration_seconds", "histogram",
               "Time from webhook request to answer (durable accept or refusal), by outcome.",
               ("outcome",), _LATENCY_BUCKETS,
               label_values=(("outcome", "accepted | unauthorized | rate_limited | too_large | bad_json | invalid "
                                         "| unavailable"),)),
    MetricSpec("kubernaut_auth_denied", "counter",
               "Requests the gateway refused for their credentials or permissions (issue 12), by reason.",
               ("reason",), label_values=(("reason", "missing | malformed | invalid | forbidden | unavailable"),)),
    # -- incidents ---------------------------------------------------------------------------------------
    MetricSpec("kubernaut_incident_transitions", "counter",
               "Incidents entering a phase (the incident funnel), by phase and the incident's cluster.",
               ("phase", "cluster"),
               label_values=(("phase", "new | analyzed | analysis_failed | awaiting_approval | dry_run_completed "
                                       "| remediated | escalated | action_failed | workflow_failed | resolved"),
                             _CLUSTER_VALUES)),
    MetricSpec("kubernaut_incidents", "gauge",
               "Incidents currently in each phase, as last counted from the database by this replica.",
               ("phase",), aggregation="max"),
    # -- analysis ---------------------------------------------------------------------------------------
    MetricSpec("kubernaut_analyses", "counter",
               "Finished analyses by the engine that produced the decision and their outcome.",
               ("engine", "outcome"),
               label_values=(("engine", "rules | llm"), ("outcome", "ok | fallback | invalid | error")),),
    MetricSpec("kubernaut_analysis_duration_seconds", "histogram",
               "Wall-clock time of one analysis (context, LLM calls and validation included).",
               ("engine",), _LLM_BUCKETS, label_values=(("engine", "rules | llm"),)),
    MetricSpec("kubernaut_llm_requests", "counter",
               "Calls to the LLM provider by model and outcome.",
               ("model", "outcome"),
               label_values=(("outcome", "ok | invalid | timeout | error | budget_exceeded | circuit_open"),)),
    MetricSpec("kubernaut_llm_tokens", "counter",
               "LLM tokens used, by model and kind.",
               ("model", "kind"), label_values=(("kind", "prompt | completion"),)),
    MetricSpec("kubernaut_llm_cost_usd", "counter",
               "Estimated LLM cost in US dollars (analysis.llm_prices), by model.",
               ("model",)),
    MetricSpec("kubernaut_llm_circuit_state", "gauge",
               "LLM circuit breaker of this replica: 0 closed, 1 half-open, 2 open (rule engine only).",
               ("provider",), aggregation="max"),
    MetricSpec("kubernaut_cluster_circuit_state", "gauge",
               "Circuit of each cluster of a fleet (fleet.clusters) as the executor sees it: 0 closed, 1 half-open, "
               "2 open (that cluster's incidents wait; the others carry on).",
               ("cluster",), aggregation="max"),
    MetricSpec("kubernaut_event_watch_owned", "gauge",
               "1 on the processor replica that owns the cluster's Warning-event watch (processing.events), 0 on "
               "the others: the max over replicas is 0 while nobody watches it.",
               ("cluster",), aggregation="max"),
    # -- workflow and execution ------------------------------------------------------------------------
    MetricSpec("kubernaut_actions", "counter",
               "Catalog actions by name, outcome, execution mode and the cluster acted on.",
               ("action", "outcome", "mode", "cluster"),
               label_values=(("outcome", "succeeded | failed | rolled_back | rejected | skipped"),
                             ("mode", "dry-run | live"), _CLUSTER_VALUES)),
    MetricSpec("kubernaut_action_duration_seconds", "histogram",
               "Time to execute one catalog action (dry-run included), by action.",
               ("action",), _ACTION_BUCKETS),
    MetricSpec("kubernaut_approvals_pending", "gauge",
               "Approval requests waiting for a human, as last counted from the database by this replica.",
               (), aggregation="max"),
    MetricSpec("kubernaut_approval_decisions", "counter",
               "Approval requests decided, by decision and the incident's cluster.",
               ("decision", "cluster"), label_values=(("decision", "approved | rejected | expired"), _CLUSTER_VALUES)),
    # -- effectiveness and notifications -----------------------------------------------------------------
    MetricSpec("kubernaut_assessment_score", "histogram",
               "Effectiveness score (0..1) of executed actions, by action.",
               ("action",), _SCORE_BUCKETS),
    MetricSpec("kubernaut_notifications", "counter",
               "Notification deliveries by outcome.",
               ("outcome",), label_values=(("outcome", "sent | failed"),)),
    MetricSpec("kubernaut_notification_receiver_failures", "gauge",
               "Failed deliveries in a row of each notification receiver (0 after a success; failing from "
               "notifications.receiver_health.failing_after, also on /ready for admins).",
               ("receiver",), aggregation="max"),
    # -- durable work queue ------------------------------------------------------------------------------
    MetricSpec("kubernaut_jobs_dead_lettered", "counter",
               "Jobs that used up their attempts and became dead letters (GET /api/v1/jobs?state=dead), by kind.",
               ("kind",), label_values=(("kind", " | ".join(kind.value for kind in JobKind)),)),
    MetricSpec("kubernaut_jobs_replayed", "counter",
               "Dead jobs replayed (POST /api/v1/jobs/{id}/retry, kubernaut jobs retry), by kind.",
               ("kind",)),
    MetricSpec("kubernaut_job_leases_lost", "counter",
               "Job holders that found their lease gone and stopped without writing, by kind.",
               ("kind",)),
    # -- audit trail -------------------------------------------------------------------------------------
    MetricSpec("kubernaut_audit_head_seq", "gauge",
               "Sequence (event id) of the audit chain head last anchored by this replica; it never goes down "
               "unless the tail of the trail was deleted.",
               (), aggregation="max"),
)

_BY_NAME: dict[str, MetricSpec] = {spec.name: spec for spec in METRICS}

CIRCUIT_STATES: Mapping[str, int] = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

_LABEL_RE = re.compile(r"[^A-Za-z0-9_.:/@+-]+")


class _Registry:
    """Lazily built metric objects of this process: Ray's (when Ray is up) and the local mirror."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.local = CollectorRegistry(auto_describe=True)
        self.local_metrics: dict[str, Any] = {}
        self.ray_metrics: dict[str, Any] | None = None
        self.seen: dict[tuple[str, str], set[str]] = {}
        self.failed: set[str] = set()
        # Last value of every gauge series recorded through Ray, re-recorded by the refresher thread.
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.refresher: threading.Thread | None = None

    def keep_gauge(self, name: str, tags: Mapping[str, str], value: float) -> None:
        self.gauges[(name, tuple(sorted(tags.items())))] = value
        if self.refresher is None:
            with self.lock:
                if self.refresher is None:
                    self.refresher = threading.Thread(target=self._refresh_loop, name="kubernaut-gauges", daemon=True)
                    self.refresher.start()

    def _refresh_loop(self) -> None:
        interval = gauge_refresh_interval_s()
        while True:
            time.sleep(interval)
            for (name, tags), value in list(self.gauges.items()):
                metric = (self.ray_metrics or {}).get(name)
                if metric is None:
                    continue
                try:
                    metric.set(value, tags=dict(tags) or None)
                except Exception:  # never let the refresher die
                    logger.debug("cannot refresh gauge %s", name, exc_info=True)

    def local_metric(self, spec: MetricSpec) -> Any:
        metric = self.local_metrics.get(spec.name)
        if metric is None:
            with self.lock:
                metric = self.local_metrics.get(spec.name)
                if metric is None:
                    metric = _make_local(spec, self.local)
                    self.local_metrics[spec.name] = metric
        return metric

    def ray_metric(self, spec: MetricSpec) -> Any | None:
        if self.ray_metrics is None:
            if not _ray_ready():
                return None  # not in a Ray worker (unit tests, local testing mode): local mirror only
            with self.lock:
                if self.ray_metrics is None:
                    self.ray_metrics = _make_ray_metrics()
        return self.ray_metrics.get(spec.name)

    def normalise(self, metric: str, label: str, value: object) -> str:
        text = _LABEL_RE.sub("_", str(value if value is not None else "none")).strip("_")[:64] or "none"
        key = (metric, label)
        seen = self.seen.setdefault(key, set())
        if text in seen:
            return text
        with self.lock:
            if len(seen) >= MAX_LABEL_VALUES:
                return OTHER
            seen.add(text)
        return text


def gauge_refresh_interval_s() -> float:
    """Half of Ray's metrics export interval (Ray keeps a gauge for two), between 0.5 and 5 seconds."""
    configured = os.environ.get("KUBERNAUT_METRICS_GAUGE_REFRESH_S")
    if configured:
        return max(float(configured), 0.1)
    try:
        import ray

        interval_ms = float(ray._config.metrics_report_interval_ms())
    except Exception:
        interval_ms = float(os.environ.get("RAY_metrics_report_interval_ms", "10000"))
    return min(max(max(interval_ms, 1000.0) / 2000.0, 0.5), 5.0)


def _ray_ready() -> bool:
    try:
        import ray

        return ray.is_initialized()
    except Exception:
        return False


def _make_local(spec: MetricSpec, registry: CollectorRegistry) -> Any:
    if spec.kind == "counter":
        return PromCounter(spec.name, spec.description, spec.labels, registry=registry)
    if spec.kind == "gauge":
        return PromGauge(spec.name, spec.description, spec.labels, registry=registry)
    return PromHistogram(spec.name, spec.description, spec.labels, buckets=spec.boundaries, registry=registry)


def _make_ray_metrics() -> dict[str, Any]:
    from ray.util import metrics as ray_metrics

    made: dict[str, Any] = {}
    for spec in METRICS:
        try:
            if spec.kind == "counter":
                made[spec.name] = ray_metrics.Counter(spec.name, spec.description, tag_keys=spec.labels)
            elif spec.kind == "gauge":
                made[spec.name] = ray_metrics.Gauge(spec.name, spec.description, tag_keys=spec.labels)
            else:
                made[spec.name] = ray_metrics.Histogram(
                    spec.name, spec.description, boundaries=list(spec.boundaries), tag_keys=spec.labels
                )
        except Exception:  # one bad metric must not take the others down
            logger.exception("cannot create Ray metric %s", spec.name)
    return made


_registry = _Registry()


def _record(name: str, value: float, labels: Mapping[str, object] | None = None) -> None:
    """Record one point in both sinks. Never raises."""
    spec = _BY_NAME[name]
    try:
        tags = {key: _registry.normalise(name, key, (labels or {}).get(key)) for key in spec.labels}
        if not math.isfinite(value) or (spec.kind == "counter" and value <= 0):
            return  # Ray rejects non-positive increments (nothing happened); NaN/inf would poison sums
        local = _registry.local_metric(spec)
        local_child = local.labels(**tags) if spec.labels else local
        if spec.kind == "counter":
            local_child.inc(value)
        elif spec.kind == "gauge":
            local_child.set(value)
        else:
            local_child.observe(value)
        ray_metric = _registry.ray_metric(spec)
        if ray_metric is not None:
            if spec.kind == "counter":
                ray_metric.inc(value, tags=tags or None)
            elif spec.kind == "gauge":
                ray_metric.set(value, tags=tags or None)
                _registry.keep_gauge(name, tags, value)
            else:
                ray_metric.observe(value, tags=tags or None)
    except Exception:
        if name not in _registry.failed:  # log once per metric and process, not per event
            _registry.failed.add(name)
            logger.warning("metric %s not recorded", name, exc_info=True)


# The catalog declares its action names when it loads (execution/catalog/registry.py); until then every
# name is "unknown": an action label is never taken from outside as is (label cardinality, hostile names).
_known_actions: frozenset[str] = frozenset()


def declare_actions(names: Iterable[str]) -> None:
    """The action names that may appear as a label value."""
    global _known_actions
    _known_actions = frozenset(names)


def _action_label(action: str) -> str:
    return action if action in _known_actions else "unknown"


# -- public helpers: one per event ------------------------------------------------------------------------


def alert_received(status: str, count: int = 1) -> None:
    """``count`` alerts with ``status`` (firing/resolved) were committed by the gateway."""
    _record("kubernaut_alerts_received", count, {"status": status})


def alert_rejected(reason: str) -> None:
    """One webhook delivery was refused (unauthorized, rate_limited, too_large, bad_json, invalid, unavailable)."""
    _record("kubernaut_alerts_rejected", 1, {"reason": reason})


def alert_deduplicated(kind: str, count: int = 1) -> None:
    """``count`` alerts opened no incident: ``redelivery``, ``incident`` (folded into an open one) or ``storm``."""
    _record("kubernaut_alerts_deduplicated", count, {"kind": kind})


def webhook_handled(outcome: str, seconds: float) -> None:
    """A webhook request was answered after ``seconds`` with ``outcome`` (accepted or a rejection reason)."""
    _record("kubernaut_webhook_duration_seconds", max(seconds, 0.0), {"outcome": outcome})


def webhooks_answered() -> dict[str, float]:
    """Webhook requests answered by this process so far, by outcome (the count of the duration histogram)."""
    histogram = _registry.local_metrics.get("kubernaut_webhook_duration_seconds")
    if histogram is None:
        return {}
    return {sample.labels["outcome"]: sample.value for family in histogram.collect() for sample in family.samples
            if sample.name.endswith("_count")}


def incident_transition(phase: str, cluster: str | None = None) -> None:
    """An incident of ``cluster`` entered ``phase`` (``incidents.set_phase`` and creation: ``new``). None: an
    incident from before the fleet, recorded as ``none``."""
    _record("kubernaut_incident_transitions", 1, {"phase": phase, "cluster": cluster})


_reported_phases: set[str] = set()


def incidents_by_phase(counts: Mapping[str, int]) -> None:
    """Current number of incidents per phase, as counted from the incidents table.

    The mapping is the whole picture: a phase reported before and absent now is set to 0.
    """
    for phase in _reported_phases - set(counts):
        _record("kubernaut_incidents", 0.0, {"phase": phase})
    for phase, count in counts.items():
        _record("kubernaut_incidents", float(count), {"phase": phase})
    _reported_phases.update(counts)


def analysis_completed(
    engine: str,
    outcome: str,
    seconds: float,
    *,
    model: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: float = 0.0,
) -> None:
    """One analysis finished: ``engine`` rules/llm, ``outcome`` ok/fallback/invalid/error, tokens and cost."""
    engine_label = "llm" if engine.startswith("llm") else engine  # "llm:<model>" → engine llm + model label
    _record("kubernaut_analyses", 1, {"engine": engine_label, "outcome": outcome})
    _record("kubernaut_analysis_duration_seconds", max(seconds, 0.0), {"engine": engine_label})
    if model is None and engine.startswith("llm:"):
        model = engine.split(":", 1)[1]
    if model:
        llm_usage(model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd)


def analysis_failed(engine: str) -> None:
    """An analysis gave up (the incident is analysis_failed): counted, without a latency sample."""
    _record("kubernaut_analyses", 1, {"engine": "llm" if engine.startswith("llm") else engine, "outcome": "error"})


def llm_request(model: str, outcome: str) -> None:
    """One call to the LLM provider ended with ``outcome`` (ok, invalid, timeout, error, budget_exceeded …)."""
    _record("kubernaut_llm_requests", 1, {"model": model, "outcome": outcome})


def llm_usage(model: str, *, prompt_tokens: int = 0, completion_tokens: int = 0, cost_usd: float = 0.0) -> None:
    """Tokens and estimated cost of LLM calls (when not already passed to :func:`analysis_completed`)."""
    _record("kubernaut_llm_tokens", prompt_tokens, {"model": model, "kind": "prompt"})
    _record("kubernaut_llm_tokens", completion_tokens, {"model": model, "kind": "completion"})
    _record("kubernaut_llm_cost_usd", cost_usd, {"model": model})


def cluster_circuit_state(cluster: str, state: str) -> None:
    """The circuit of ``cluster`` (a fleet's API server) is now ``closed``, ``half_open`` or ``open``."""
    _record("kubernaut_cluster_circuit_state", float(CIRCUIT_STATES.get(state, 2)), {"cluster": cluster})


def event_watch_owned(cluster: str, owned: bool) -> None:
    """Whether this replica watches ``cluster``'s Warning events now (kubernaut.processing.watch_ownership)."""
    _record("kubernaut_event_watch_owned", 1.0 if owned else 0.0, {"cluster": cluster})


def llm_circuit_state(provider: str, state: str) -> None:
    """The LLM circuit breaker of this replica is now ``closed``, ``half_open`` or ``open``."""
    _record("kubernaut_llm_circuit_state", float(CIRCUIT_STATES.get(state, 2)), {"provider": provider})


def action_executed(action: str, outcome: str, *, dry_run: bool, seconds: float | None = None,
                    cluster: str | None = None) -> None:
    """A catalog action on ``cluster`` finished: ``outcome`` succeeded/failed/rolled_back/rejected/skipped."""
    name = _action_label(action)
    _record("kubernaut_actions", 1, {"action": name, "outcome": outcome, "mode": "dry-run" if dry_run else "live",
                                     "cluster": cluster})
    if seconds is not None:
        _record("kubernaut_action_duration_seconds", max(seconds, 0.0), {"action": name})


def audit_head(seq: int) -> None:
    """The audit chain head was anchored at ``seq`` (kubernaut/storage/audit.py)."""
    _record("kubernaut_audit_head_seq", float(seq))


def auth_denied(reason: str) -> None:
    """The gateway refused a request: no/invalid credentials (401), missing permission (403), or the authority
    that checks them unreachable (503)."""
    _record("kubernaut_auth_denied", 1, {"reason": reason})


def approval_refused(reason: str) -> None:
    """The orchestrator refused an approval decision the gateway let through (self-approval, the same approver
    twice, an override the policy or its dry-run refuses, ...): counted with the gateway's refusals."""
    auth_denied(f"approval_{reason}")


def approvals_pending(count: int) -> None:
    """Approval requests now waiting for a human."""
    _record("kubernaut_approvals_pending", float(count))


def approval_decided(decision: str, cluster: str | None = None) -> None:
    """An approval request about an incident of ``cluster`` was ``approved``, ``rejected`` or ``expired``."""
    _record("kubernaut_approval_decisions", 1, {"decision": decision, "cluster": cluster})


def assessment_recorded(action: str, score: float) -> None:
    """The effectiveness monitor scored an executed action (0..1)."""
    _record("kubernaut_assessment_score", min(max(score, 0.0), 1.0), {"action": _action_label(action)})


def notification_sent(ok: bool) -> None:
    """One notification delivery attempt finished."""
    _record("kubernaut_notifications", 1, {"outcome": "sent" if ok else "failed"})


def notification_receiver_failures(receiver: str, failures: int) -> None:
    """A delivery to ``receiver`` finished: its failed deliveries in a row (0 after a success)."""
    _record("kubernaut_notification_receiver_failures", float(failures), {"receiver": receiver})


def job_dead_lettered(kind: str) -> None:
    """A job of ``kind`` used up its attempts and is now a dead letter."""
    _record("kubernaut_jobs_dead_lettered", 1, {"kind": kind})


def job_replayed(kind: str) -> None:
    """A dead job of ``kind`` was replayed by an operator."""
    _record("kubernaut_jobs_replayed", 1, {"kind": kind})


def job_lease_lost(kind: str) -> None:
    """A holder of a ``kind`` job lost its lease and stopped without writing."""
    _record("kubernaut_job_leases_lost", 1, {"kind": kind})


def render_local() -> tuple[bytes, str]:
    """This process's metrics in Prometheus text format and its content type (the gateway's ``/metrics``)."""
    return generate_latest(_registry.local), CONTENT_TYPE_LATEST


def metric(name: str) -> MetricSpec:
    """The spec of a metric by registered name (``kubernaut_…``)."""
    return _BY_NAME[name]


def exported_series() -> dict[str, MetricSpec]:
    """Every sample name on Ray's endpoint (``ray_kubernaut_…``) mapped to its spec."""
    return {series: spec for spec in METRICS for series in spec.series}
