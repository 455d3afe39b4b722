"""The first rule engine: common kube-prometheus alerts → catalog actions; the rest → notify_only."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kubernaut.analysis.engine import analyze_signals
from kubernaut.analysis.rules import load_rules, render
from kubernaut.execution.catalog import CATALOG
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

RULES = load_rules()
NOW = datetime.now(timezone.utc)


def signal(alertname: str, **labels: str) -> Signal:
    return Signal(alert_id=1, alertname=alertname, status="firing", labels={"alertname": alertname, **labels},
                  starts_at=NOW, am_fingerprint="f", namespace=labels.get("namespace"))


DEPLOY = ResourceRef(kind="Deployment", name="api", namespace="shop")


@pytest.mark.parametrize(("alert", "labels", "target", "action", "target_kind"), [
    # Without the cluster's view nothing shows that a restart helps: a human is told what was recommended.
    ("KubePodCrashLooping", {"namespace": "shop", "pod": "api-5f6d7c-xyz12", "container": "api"}, DEPLOY,
     "notify_only", "Pod"),
    ("KubePodCrashLooping", {"namespace": "shop", "pod": "api-5f6d7c-xyz12", "reason": "OOMKilled"}, DEPLOY,
     "increase_memory_limits", "Deployment"),
    ("KubePodNotReady", {"namespace": "shop", "pod": "api-5f6d7c-xyz12"}, DEPLOY, "notify_only", "Pod"),
    ("KubeDeploymentReplicasMismatch", {"namespace": "shop", "deployment": "api"}, DEPLOY, "notify_only",
     "Deployment"),
    ("KubeContainerWaiting", {"namespace": "shop", "pod": "api-5f6d7c-xyz12", "container": "api"}, DEPLOY,
     "collect_diagnostics", "Pod"),
    ("KubeHpaMaxedOut", {"namespace": "shop", "horizontalpodautoscaler": "api"},
     ResourceRef(kind="HorizontalPodAutoscaler", name="api", namespace="shop"), "update_hpa",
     "HorizontalPodAutoscaler"),
    ("KubePersistentVolumeFillingUp", {"namespace": "db", "persistentvolumeclaim": "data-pg-0"},
     ResourceRef(kind="PersistentVolumeClaim", name="data-pg-0", namespace="db"), "expand_pvc",
     "PersistentVolumeClaim"),
    ("KubeNodeNotReady", {"node": "worker-1"}, ResourceRef(kind="Node", name="worker-1"), "cordon_node", "Node"),
    ("KubeContainerOOMKilled", {"namespace": "shop", "pod": "api-5f6d7c-xyz12"}, DEPLOY, "increase_memory_limits",
     "Deployment"),
    ("Watchdog", {}, ResourceRef(kind="Cluster", name="c"), "notify_only", "Cluster"),
])
def test_rule_for_each_common_alert(alert: str, labels: dict, target: ResourceRef, action: str,
                                    target_kind: str) -> None:
    result = analyze_signals(RULES, [signal(alert, **labels)], target)
    assert result.action == action, result
    assert result.target.kind == target_kind
    assert result.engine == "rules" and result.rule_id and 0 < result.confidence <= 1
    assert result.fallback_reason is None


def test_every_rule_names_a_catalog_action_with_valid_parameters() -> None:
    samples = {"{finding.key}": "dedicated", "{finding.effect}": "NoSchedule"}
    for rule in RULES.rules:
        assert rule.action in CATALOG, rule.id
        CATALOG[rule.action].parse_params({k: samples.get(v, v) if isinstance(v, str) else v
                                           for k, v in rule.parameters.items()})
        for alt in rule.alternatives:
            assert alt.action in CATALOG, (rule.id, alt.action)


def test_oom_never_rolls_back() -> None:
    result = analyze_signals(RULES, [signal("KubePodCrashLooping", namespace="s", pod="a-5f6d7c-xyz12",
                                            reason="OOMKilled")], DEPLOY)
    assert result.action != "rollback_deployment"


def test_invalid_decision_falls_back_to_notify_only_with_reason() -> None:
    # A pod label that is not a valid Kubernetes name cannot become a restart target.
    result = analyze_signals(RULES, [signal("KubePodCrashLooping", namespace="shop", pod="../../etc")], DEPLOY)
    assert result.action == "notify_only"
    assert result.fallback_reason and "restart_pod" in result.fallback_reason


def test_untrusted_label_values_are_data_not_templates() -> None:
    text = render("pod {labels.pod} {target}", {"pod": "{labels.secret}\x1b[31m\nrm -rf /"}, DEPLOY)
    assert text == "pod {labels.secret} [31m rm -rf / Deployment/shop/api"
