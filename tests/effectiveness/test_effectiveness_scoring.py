"""Effectiveness scoring rules, without I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kubernaut.config.settings import EffectivenessConfig, KubernautConfig
from kubernaut.effectiveness.models import Component, ContainerState, PodState, TargetState
from kubernaut.effectiveness.scoring import combine, health, relative_improvement
from kubernaut.effectiveness.sources import render_query
from kubernaut.effectiveness.target_reader import spec_hash
from kubernaut.models.resource import ResourceRef

ACTION_AT = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
BEFORE = ACTION_AT - timedelta(hours=1)
AFTER = ACTION_AT + timedelta(minutes=2)
WEIGHTS = {"health": 0.40, "alert": 0.35, "metrics": 0.25}


def pod(uid: str, ready: bool = True, restarts: int = 0, waiting: str | None = None, last: str | None = None,
        last_at: datetime | None = None, created: datetime = BEFORE) -> PodState:
    return PodState(uid=uid, name=f"web-{uid}", created_at=created, ready=ready, phase="Running",
                    containers=[ContainerState(name="app", ready=ready, restarts=restarts, waiting_reason=waiting,
                                               last_terminated_reason=last, last_terminated_at=last_at)])


def workload(*pods: PodState, desired: int = 2) -> TargetState:
    return TargetState(exists=True, kind="Deployment", desired=desired, pods=list(pods), spec_hash="h")


@pytest.mark.parametrize(("target", "baseline", "value", "words"), [
    (TargetState(exists=False, kind="Deployment"), None, 0.0, "no longer exists"),
    (workload(pod("a", ready=False), pod("b", ready=False)), None, 0.0, "0/2"),
    (workload(pod("a"), pod("b", ready=False, restarts=5, waiting="CrashLoopBackOff", last="Error", last_at=AFTER)),
     None, 0.0, "CrashLoopBackOff"),
    (workload(pod("a"), pod("b", ready=False)), None, 0.5, "1/2"),
    (workload(pod("a"), pod("b"), pod("c", ready=False, waiting="ImagePullBackOff")), None, 0.5, "ImagePullBackOff"),
    (workload(pod("a", restarts=3, last="OOMKilled", last_at=AFTER), pod("b")), {"a": 2, "b": 0}, 0.25, "OOMKilled"),
    (workload(pod("a", restarts=3, last="Error", last_at=AFTER), pod("b")), {"a": 2, "b": 0}, 0.75, "1 restart"),
    # Restarts and OOM kills from before the action do not count against it.
    (workload(pod("a", restarts=3, last="OOMKilled", last_at=BEFORE), pod("b")), {"a": 3, "b": 0}, 1.0, "all 2/2"),
    (workload(pod("a", restarts=3, last="OOMKilled", last_at=BEFORE), pod("b")), None, 1.0, "all 2/2"),
    # Without a baseline: a pod created after the action restarted restartCount times since.
    (workload(pod("a", restarts=1, last="Error", last_at=AFTER, created=AFTER), pod("b")), None, 0.75, "restart"),
    (TargetState(exists=True, kind="Node", node_ready=False), None, 0.0, "not Ready"),
    (TargetState(exists=True, kind="HorizontalPodAutoscaler", supported=False), None, None, "no health rule"),
    (workload(desired=0), None, None, "zero"),
])
def test_health_rules(target: TargetState, baseline: dict[str, int] | None, value: float | None, words: str) -> None:
    result = health(target, ACTION_AT, baseline)
    assert result.value == value
    assert words in result.reason


def test_relative_improvement_is_clamped_and_directional() -> None:
    assert relative_improvement(0.9, 0.0) == 1.0
    assert relative_improvement(0.8, 0.4) == pytest.approx(0.5)
    assert relative_improvement(0.4, 0.8) == 0.0  # worse is clamped to 0, not negative
    assert relative_improvement(0.0, 0.0) is None  # nothing to improve on says nothing
    assert relative_improvement(100, 150, better="higher") == pytest.approx(0.5)
    assert relative_improvement(100, 500, better="higher") == 1.0
    assert relative_improvement(float("nan"), 1.0) is None


def comp(name: str, value: float | None) -> Component:
    return Component(name=name, value=value, reason=f"{name}={value}")  # type: ignore[arg-type]


def test_combine_weights_only_what_was_measured() -> None:
    score, verdict, reasons = combine({"health": comp("health", 1.0), "alert": comp("alert", 1.0),
                                       "metrics": comp("metrics", 1.0)}, WEIGHTS, 0.7, 0.5)
    assert (score, verdict) == (1.0, "effective")
    # Metrics not configured: the two others carry the whole weight (0.40 and 0.35 renormalized).
    score, verdict, _ = combine({"health": comp("health", 0.5), "alert": comp("alert", 1.0),
                                 "metrics": comp("metrics", None)}, WEIGHTS, 0.7, 0.5)
    assert score == pytest.approx((0.4 * 0.5 + 0.35 * 1.0) / 0.75, abs=1e-4) and verdict == "effective"
    score, verdict, reasons = combine({"health": comp("health", 0.0), "alert": comp("alert", 0.0)}, WEIGHTS, 0.7, 0.5)
    assert (score, verdict) == (0.0, "ineffective") and "ineffective" in reasons[-1]
    score, verdict, _ = combine({"health": comp("health", 1.0), "alert": comp("alert", 0.0)}, WEIGHTS, 0.7, 0.5)
    assert verdict == "inconclusive" and 0.5 <= score < 0.7  # healthy but the alert still fires: not yet


def test_a_resolution_alone_is_not_evidence_of_effectiveness() -> None:
    # Only the alert could be judged (no Kubernetes connection, no metrics): a resolved webhook, which any
    # sender can forge, must not become an "effective" that counts toward autonomy.
    score, verdict, reasons = combine({"health": comp("health", None), "alert": comp("alert", 1.0),
                                       "metrics": comp("metrics", None)}, WEIGHTS, 0.7, 0.5)
    assert (score, verdict) == (1.0, "inconclusive") and "resolution alone" in reasons[-1]
    # A still-firing alert alone remains a failure; with health evidence the resolution counts again.
    assert combine({"alert": comp("alert", 0.0)}, WEIGHTS, 0.7, 0.5)[1] == "ineffective"
    assert combine({"health": comp("health", 1.0), "alert": comp("alert", 1.0)}, WEIGHTS, 0.7, 0.5)[1] == "effective"
    assert combine({"metrics": comp("metrics", 0.9), "alert": comp("alert", 1.0)}, WEIGHTS, 0.7, 0.5)[1] == "effective"


def test_drift_makes_any_score_inconclusive_and_nothing_measured_is_inconclusive() -> None:
    score, verdict, reasons = combine({"health": comp("health", 0.0), "alert": comp("alert", 0.0),
                                       "drift": comp("drift", 1.0)}, WEIGHTS, 0.7, 0.5)
    assert verdict == "inconclusive" and score == 0.0 and "someone else" in reasons[-1]
    assert combine({"drift": comp("drift", 0.0)}, WEIGHTS, 0.7, 0.5)[:2] == (None, "inconclusive")


def test_spec_hash_ignores_replicas_of_workloads_only() -> None:
    spec = {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}
    assert spec_hash("Deployment", spec) == spec_hash("Deployment", {**spec, "replicas": 5})
    assert spec_hash("Deployment", spec) != spec_hash("Deployment", {**spec, "template": {"spec": {}}})
    assert spec_hash("Deployment", {"b": 1, "a": 2}) == spec_hash("Deployment", {"a": 2, "b": 1})
    assert spec_hash("Deployment", None) is None


def test_promql_templates_take_only_plain_object_names() -> None:
    template = 'sum(rate(x{namespace="{namespace}",pod=~"{pod_regex}"}[5m]))'
    query = render_query(template, ResourceRef(kind="Deployment", name="web.v2", namespace="shop"))
    assert query == 'sum(rate(x{namespace="shop",pod=~"web[.]v2(-.+)?"}[5m]))'
    pod_query = render_query(template, ResourceRef(kind="Pod", name="web-1", namespace="shop"))
    assert pod_query is not None and 'pod=~"web-1"' in pod_query
    # Alert data is untrusted: anything that is not a Kubernetes name never reaches PromQL.
    assert render_query(template, ResourceRef(kind="Deployment", name='x"}or vector(1)', namespace="s")) is None
    assert render_query(template, ResourceRef(kind="Deployment", name="web", namespace="a b")) is None


def test_config_defaults_and_validation() -> None:
    cfg = KubernautConfig()
    assert (cfg.effectiveness.weight_health, cfg.effectiveness.weight_alert, cfg.effectiveness.weight_metrics) == (
        0.40, 0.35, 0.25)
    assert cfg.effectiveness.validity_s == 1800 and {q.name for q in cfg.effectiveness.metric_queries} == {
        "error_rate", "latency_p95", "cpu", "memory"}
    assert cfg.intelligence.embedding_provider == "hashing"
    with pytest.raises(ValueError):
        EffectivenessConfig(weight_health=2)
    with pytest.raises(ValueError):
        EffectivenessConfig(metric_queries=[{"name": "x", "query": "up", "better": "sideways"}])
