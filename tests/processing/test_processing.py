"""Target resolution from labels and classification, each with the rule that decided it."""

from __future__ import annotations

import pytest

from kubernaut.processing.alert_target import resolve_from_labels
from kubernaut.processing.classification import classify, normalize_severity, priority_for


@pytest.mark.parametrize(("labels", "kind", "name", "namespace"), [
    ({"namespace": "shop", "pod": "api-5f6d7c-xyz12"}, "Deployment", "api", "shop"),
    ({"namespace": "shop", "pod": "api-5f6d7c-xyz12", "deployment": "api-v2"}, "Deployment", "api-v2", "shop"),
    ({"namespace": "db", "pod": "postgres-0"}, "StatefulSet", "postgres", "db"),
    ({"namespace": "db", "pod": "weird_pod"}, "Pod", "weird_pod", "db"),
    ({"namespace": "db", "persistentvolumeclaim": "data-postgres-0"}, "PersistentVolumeClaim", "data-postgres-0",
     "db"),
    ({"node": "worker-3", "instance": "10.0.0.3:9100"}, "Node", "worker-3", None),
    ({"namespace": "kube-system", "job": "kube-scheduler"}, "Namespace", "kube-system", None),
    ({"job": "node-exporter", "instance": "x"}, "Cluster", "c1", None),
])
def test_target_from_labels(labels: dict, kind: str, name: str, namespace: str | None) -> None:
    resolution = resolve_from_labels({"alertname": "A", **labels}, "c1")
    assert (resolution.target.kind, resolution.target.name, resolution.target.namespace) == (kind, name, namespace)
    assert resolution.source == "labels" and resolution.chain


def test_same_workload_same_fingerprint_regardless_of_alert_or_pod() -> None:
    a = resolve_from_labels({"alertname": "KubePodCrashLooping", "namespace": "s", "pod": "api-5f6d7c-aaaaa"}, "c")
    b = resolve_from_labels({"alertname": "KubePodNotReady", "namespace": "s", "pod": "api-5f6d7c-bbbbb"}, "c")
    assert a.fingerprint == b.fingerprint
    other_cluster = resolve_from_labels({"alertname": "X", "namespace": "s", "pod": "api-5f6d7c-aaaaa"}, "c2")
    assert other_cluster.fingerprint != a.fingerprint


def test_non_workload_alerts_do_not_collapse_across_alert_names() -> None:
    a = resolve_from_labels({"alertname": "KubeSchedulerDown", "namespace": "kube-system"}, "c")
    b = resolve_from_labels({"alertname": "KubeControllerManagerDown", "namespace": "kube-system"}, "c")
    assert a.fingerprint != b.fingerprint


@pytest.mark.parametrize(("raw", "expected"), [
    ("critical", "critical"), ("SEV1", "critical"), ("P0", "critical"), ("high", "high"), ("Warning", "warning"),
    ("medium", "warning"), ("info", "info"), ("low", "info"), (None, "unknown"), ("banana", "unknown"),
])
def test_severity_normalization(raw: str | None, expected: str) -> None:
    assert normalize_severity(raw)[0] == expected


@pytest.mark.parametrize(("namespace", "labels", "env"), [
    ("payments-prod", None, "production"),
    ("production", None, "production"),
    ("shop-staging", None, "staging"),
    ("dev-team-a", None, "development"),
    ("qa", None, "test"),
    ("payments", None, "unknown"),
    ("payments", {"kubernaut.ai/environment": "production"}, "production"),
    ("prod-mirror", {"env": "staging"}, "staging"),  # the label beats the name
    ("reproduce", None, "unknown"),  # no substring false positives
])
def test_environment(namespace: str, labels: dict | None, env: str) -> None:
    result = classify(namespace, labels, "critical")
    assert result.environment == env and result.environment_rule


@pytest.mark.parametrize(("env", "sev", "prio"), [
    ("production", "critical", "P0"), ("production", "high", "P1"), ("staging", "critical", "P1"),
    ("staging", "warning", "P2"), ("production", "warning", "P2"), ("development", "critical", "P3"),
    ("unknown", "critical", "P3"),
])
def test_priority_matrix(env: str, sev: str, prio: str) -> None:
    assert priority_for(env, sev)[0] == prio
