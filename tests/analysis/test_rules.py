"""Rule engine and rules.yaml: every rule, the guards, context-driven choices, user rule files, kube-prometheus
coverage; the common kube-prometheus alerts from their labels alone, the catalog actions the rules name, and
label values rendered as data. (Finding rules are decided from their contexts in test_diagnosis.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kubernaut.analysis.engine import analyze_signals, rules_decision
from kubernaut.analysis.facts import Situation, observe
from kubernaut.analysis.rules import READ_ONLY_ACTIONS, RulesError, decide, load_rules, render
from kubernaut.analysis.runbooks import runbooks
from kubernaut.context.models import (
    ContainerSpecSummary,
    ContainerStatusSummary,
    PodSummary,
    QuotaSummary,
    ResourceContext,
    RevisionSummary,
    Traits,
    WorkloadSummary,
)
from kubernaut.execution.catalog import CATALOG
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

RULES = load_rules()
NOW = datetime.now(timezone.utc)
NS = "shop"
DEPLOY = ResourceRef(kind="Deployment", name="web", namespace=NS)
POD = "web-5f6d7c8b9-xyz12"


def signal(alertname: str, **labels: str) -> Signal:
    return Signal(alert_id=1, alertname=alertname, status="firing", labels={"alertname": alertname, **labels},
                  starts_at=NOW, am_fingerprint="f", namespace=labels.get("namespace"))


def situation(alertname: str, labels: dict[str, str], target: ResourceRef = DEPLOY,
              facts: dict[str, Any] | None = None, context: ResourceContext | None = None) -> Situation:
    sig = signal(alertname, **labels)
    ctx = context or ResourceContext(target=target)
    observed = observe([sig], ctx)
    observed.update(facts or {})
    return Situation(signals=[sig], incident_target=target, context=ctx, facts=observed)


def deployment_context(*, pod_state: str | None = None, last_terminated: str | None = None,
                       rollout_age: timedelta | None = None, revisions: int = 2, traits: Traits | None = None,
                       quota: QuotaSummary | None = None) -> ResourceContext:
    """A live-looking context: Deployment web with one pod, as the Context API would summarize it."""
    created = NOW - (rollout_age or timedelta(days=3))
    revs = [RevisionSummary(revision=revisions - i, name=f"web-rs{i}", images=[f"web:{revisions - i}"],
                            created_at=created - timedelta(days=i)) for i in range(revisions)]
    workload = WorkloadSummary(kind="Deployment", name="web", namespace=NS, replicas=2, ready_replicas=1,
                               containers=[ContainerSpecSummary(name="web", image="web:2", limits={"memory": "128Mi"})],
                               revisions=revs, revision=revisions)
    pod = PodSummary(name=POD, phase="Running", ready=pod_state is None, restarts=5 if pod_state else 0,
                     containers=[ContainerStatusSummary(name="web", state="waiting" if pod_state else "running",
                                                        reason=pod_state, last_termination_reason=last_terminated)])
    return ResourceContext(target=DEPLOY, cluster_available=True, found=True, workload=workload, pods=[pod],
                           traits=traits or Traits(), quotas=[quota] if quota else [])


POD_LABELS = {"namespace": NS, "pod": POD, "container": "web"}
NODE = ResourceRef(kind="Node", name="worker-1")
CLUSTER = ResourceRef(kind="Cluster", name="test")
NAMESPACE = ResourceRef(kind="Namespace", name=NS)
JOB = ResourceRef(kind="Job", name="etl", namespace=NS)

# rule id → (alert, labels, target, facts, context, expected action, expected target kind)
RULE_CASES: dict[str, tuple[str, dict[str, str], ResourceRef, dict[str, Any], ResourceContext | None, str, str]] = {
    "oom-killed": ("KubeContainerOOMKilled", POD_LABELS, DEPLOY, {}, None, "increase_memory_limits", "Deployment"),
    "crashloop-oom": ("KubePodCrashLooping", POD_LABELS, DEPLOY, {},
                      deployment_context(pod_state="CrashLoopBackOff", last_terminated="OOMKilled"),
                      "increase_memory_limits", "Deployment"),
    "job-oom": ("KubeJobFailed", {"namespace": NS, "job_name": "etl"}, JOB,
                {"pods.oom_killed": True, "workload.kind": "Job"}, None, "notify_only", "Job"),
    "pods-unschedulable": ("KubeDeploymentReplicasMismatch", {"namespace": NS, "deployment": "web"}, DEPLOY,
                           {"pods.unschedulable": True}, None, "notify_only", "Deployment"),
    "crashloop-after-rollout": ("KubePodCrashLooping", POD_LABELS, DEPLOY, {},
                                deployment_context(pod_state="CrashLoopBackOff", last_terminated="Error",
                                                   rollout_age=timedelta(minutes=10)),
                                "rollback_deployment", "Deployment"),
    "image-pull-after-rollout": ("KubeContainerWaiting", {**POD_LABELS, "reason": "ImagePullBackOff"}, DEPLOY, {},
                                 deployment_context(pod_state="ImagePullBackOff"), "rollback_deployment",
                                 "Deployment"),
    "config-error-after-rollout": ("KubeContainerWaiting", {**POD_LABELS, "reason": "CreateContainerConfigError"},
                                   DEPLOY, {}, deployment_context(pod_state="CreateContainerConfigError",
                                                                  rollout_age=timedelta(minutes=5)),
                                   "rollback_deployment", "Deployment"),
    "rollout-paused": ("KubeDeploymentGenerationMismatch", {"namespace": NS, "deployment": "web"}, DEPLOY,
                       {"workload.paused": True}, None, "notify_only", "Deployment"),
    "image-pull-error": ("KubeContainerWaiting", {**POD_LABELS, "reason": "ErrImagePull"}, DEPLOY, {}, None,
                         "collect_diagnostics", "Pod"),
    "config-error": ("KubeContainerWaiting", {**POD_LABELS, "reason": "CreateContainerConfigError"}, DEPLOY, {}, None,
                     "notify_only", "Pod"),
    "container-waiting": ("KubeContainerWaiting", POD_LABELS, DEPLOY, {}, None, "collect_diagnostics", "Pod"),
    "crashloop-statefulset": ("KubePodCrashLooping", {**POD_LABELS, "pod": "db-0"},
                              ResourceRef(kind="StatefulSet", name="db", namespace=NS),
                              {"workload.kind": "StatefulSet"}, None, "collect_diagnostics", "Pod"),
    "crashloop": ("KubePodCrashLooping", POD_LABELS, DEPLOY, {}, None, "restart_pod", "Pod"),
    "pod-not-ready-network-policy": ("KubePodNotReady", POD_LABELS, DEPLOY, {"netpol.denies_all": True}, None,
                                     "notify_only", "Deployment"),
    "pod-not-ready": ("KubePodNotReady", POD_LABELS, DEPLOY, {}, None, "restart_pod", "Pod"),
    "deployment-replicas-mismatch": ("KubeDeploymentReplicasMismatch", {"namespace": NS, "deployment": "web"}, DEPLOY,
                                     {}, None, "rollout_restart", "Deployment"),
    "deployment-rollout-stuck": ("KubeDeploymentRolloutStuck", {"namespace": NS, "deployment": "web"}, DEPLOY, {},
                                 None, "rollback_deployment", "Deployment"),
    "deployment-first-rollout-stuck": ("KubeDeploymentRolloutStuck", {"namespace": NS, "deployment": "web"}, DEPLOY,
                                       {"workload.has_previous_revision": False}, None, "collect_diagnostics",
                                       "Deployment"),
    "statefulset-replicas-mismatch": ("KubeStatefulSetReplicasMismatch", {"namespace": NS, "statefulset": "db"},
                                      ResourceRef(kind="StatefulSet", name="db", namespace=NS), {}, None,
                                      "collect_diagnostics", "StatefulSet"),
    "statefulset-update-stuck": ("KubeStatefulSetUpdateNotRolledOut", {"namespace": NS, "statefulset": "db"},
                                 ResourceRef(kind="StatefulSet", name="db", namespace=NS), {}, None,
                                 "collect_diagnostics", "StatefulSet"),
    "daemonset-rollout-stuck": ("KubeDaemonSetRolloutStuck", {"namespace": NS, "daemonset": "agent"},
                                ResourceRef(kind="DaemonSet", name="agent", namespace=NS), {}, None,
                                "collect_diagnostics", "DaemonSet"),
    "daemonset-scheduling": ("KubeDaemonSetNotScheduled", {"namespace": NS, "daemonset": "agent"},
                             ResourceRef(kind="DaemonSet", name="agent", namespace=NS), {}, None, "notify_only",
                             "DaemonSet"),
    "hpa-maxed-out": ("KubeHpaMaxedOut", {"namespace": NS, "horizontalpodautoscaler": "web"},
                      ResourceRef(kind="HorizontalPodAutoscaler", name="web", namespace=NS), {}, None, "update_hpa",
                      "HorizontalPodAutoscaler"),
    "hpa-replicas-mismatch": ("KubeHpaReplicasMismatch", {"namespace": NS, "horizontalpodautoscaler": "web"},
                              ResourceRef(kind="HorizontalPodAutoscaler", name="web", namespace=NS), {}, None,
                              "notify_only", "HorizontalPodAutoscaler"),
    "pdb-not-enough-healthy": ("KubePdbNotEnoughHealthyPods", {"namespace": NS, "poddisruptionbudget": "web"},
                               NAMESPACE, {}, None, "notify_only", "Namespace"),
    "cpu-throttling": ("CPUThrottlingHigh", POD_LABELS, DEPLOY, {}, None, "increase_cpu_limits", "Deployment"),
    "pv-filling-up": ("KubePersistentVolumeFillingUp", {"namespace": NS, "persistentvolumeclaim": "data-db-0"},
                      ResourceRef(kind="PersistentVolumeClaim", name="data-db-0", namespace=NS), {}, None,
                      "expand_pvc", "PersistentVolumeClaim"),
    "pv-errors": ("KubePersistentVolumeErrors", {"persistentvolume": "pv-1", "phase": "Failed"}, CLUSTER, {}, None,
                  "notify_only", "Cluster"),
    "job-failed": ("KubeJobFailed", {"namespace": NS, "job_name": "etl"}, JOB,
                   {}, None, "rerun_job", "Job"),
    "job-not-completed": ("KubeJobNotCompleted", {"namespace": NS, "job_name": "etl"},
                          ResourceRef(kind="Job", name="etl", namespace=NS), {}, None, "collect_diagnostics", "Job"),
    "node-not-ready": ("KubeNodeNotReady", {"node": "worker-1"}, NODE, {}, None, "cordon_node", "Node"),
    "node-pressure": ("KubeNodePressure", {"node": "worker-1", "condition": "MemoryPressure"}, NODE, {}, None,
                      "cordon_node", "Node"),
    "node-capacity": ("KubeletTooManyPods", {"node": "worker-1"}, NODE, {}, None, "notify_only", "Node"),
    "node-host-level": ("NodeFilesystemAlmostOutOfSpace", {"instance": "10.0.0.5:9100", "mountpoint": "/"}, CLUSTER,
                        {}, None, "notify_only", "Cluster"),
    "quota": ("KubeQuotaExceeded", {"namespace": NS, "resource": "limits.memory"}, NAMESPACE, {}, None,
              "notify_only", "Namespace"),
    "control-plane": ("KubeAPIDown", {}, CLUSTER, {}, None, "notify_only", "Cluster"),
    "certificates": ("KubeClientCertificateExpiration", {}, CLUSTER, {}, None, "notify_only", "Cluster"),
    "monitoring-stack": ("PrometheusRuleFailures", {"namespace": "monitoring", "pod": "prometheus-k8s-0"},
                         ResourceRef(kind="StatefulSet", name="prometheus-k8s", namespace="monitoring"), {}, None,
                         "notify_only", "StatefulSet"),
    "heartbeat": ("Watchdog", {}, CLUSTER, {}, None, "notify_only", "Cluster"),
}


def test_every_rule_has_a_case() -> None:
    # Rules that match on a finding are exercised from the contexts that produce it (test_diagnosis.py).
    from tests.support.finding_cases import FINDING_RULE_CASES
    assert set(RULE_CASES) | set(FINDING_RULE_CASES) == {r.id for r in RULES.rules}


@pytest.mark.parametrize("rule_id", sorted(RULE_CASES))
def test_each_rule_decides_its_case(rule_id: str) -> None:
    alert, labels, target, facts, context, action, kind = RULE_CASES[rule_id]
    sit = situation(alert, labels, target, facts, context)
    outcome, result = rules_decision(RULES, sit)
    assert outcome.result.rule_id == rule_id, outcome.result.reasoning
    assert result.action == action and result.target.kind == kind, result
    assert result.fallback_reason is None, result.fallback_reason  # the decision passed catalog validation
    assert result.engine == "rules" and 0 < result.confidence <= 1
    assert action in outcome.candidates and READ_ONLY_ACTIONS <= outcome.candidates
    if action == "notify_only":
        assert result.parameters.get("reason"), "a notify_only tells the human what was found"


def test_every_kube_prometheus_alert_has_a_rule() -> None:
    covered = {name for rule in RULES.rules for name in rule.alerts}
    kube_prometheus = {name for name, book in runbooks().items() if book.kube_prometheus}
    assert len(kube_prometheus) == 125
    assert kube_prometheus - covered == set()


def test_notify_reasons_carry_runbook_guidance() -> None:
    result = analyze_signals(RULES, [signal("KubeSchedulerDown")], CLUSTER)
    assert result.rule_id == "control-plane"
    assert "runbooks.prometheus-operator.dev/runbooks/kubernetes/kubeschedulerdown" in result.parameters["reason"]
    assert any("runbook:" in line for line in result.reasoning)


# --- context changes the decision ---------------------------------------------------------------------

def test_crashloop_after_a_new_revision_rolls_back_but_an_old_revision_restarts_the_pod() -> None:
    fresh = deployment_context(pod_state="CrashLoopBackOff", rollout_age=timedelta(minutes=10))
    stale = deployment_context(pod_state="CrashLoopBackOff", rollout_age=timedelta(days=3))
    assert rules_decision(RULES, situation("KubePodCrashLooping", POD_LABELS, context=fresh))[1].action \
        == "rollback_deployment"
    assert rules_decision(RULES, situation("KubePodCrashLooping", POD_LABELS, context=stale))[1].action \
        == "restart_pod"


def test_oom_killed_never_rolls_back_even_right_after_a_rollout() -> None:
    ctx = deployment_context(pod_state="CrashLoopBackOff", last_terminated="OOMKilled",
                             rollout_age=timedelta(minutes=5))
    for alert in ("KubePodCrashLooping", "KubeDeploymentRolloutStuck", "KubeDeploymentReplicasMismatch"):
        outcome, result = rules_decision(RULES, situation(alert, POD_LABELS, context=ctx))
        assert result.action == "increase_memory_limits", (alert, result)
        assert "rollback_deployment" not in outcome.candidates
        assert outcome.forbidden("rollback_deployment") is not None


def test_oom_guard_skips_a_rollback_rule_to_the_next_one() -> None:
    # KubeDeploymentGenerationMismatch has no OOM rule: the rollback rule is skipped, not applied.
    sit = situation("KubeDeploymentGenerationMismatch", {"namespace": NS, "deployment": "web"},
                    facts={"pods.oom_killed": True, "workload.has_previous_revision": True})
    result = rules_decision(RULES, sit)[1]
    assert result.action != "rollback_deployment"
    assert any("guard oom-never-rollback" in line for line in result.reasoning)


def test_gitops_managed_workload_gets_a_recommendation_not_a_patch() -> None:
    ctx = deployment_context(pod_state="CrashLoopBackOff", last_terminated="OOMKilled",
                             traits=Traits(gitops_managed=True, gitops_tool="argocd"))
    result = rules_decision(RULES, situation("KubePodCrashLooping", POD_LABELS, context=ctx))[1]
    assert result.action == "notify_only"
    assert result.rule_id == "crashloop-oom+gitops-fix-in-git"
    assert "increase_memory_limits" in result.parameters["reason"] and "git" in result.parameters["reason"]
    assert result.alternatives[0].action == "increase_memory_limits"


def test_resource_quota_that_forbids_more_memory_turns_the_raise_into_a_notification() -> None:
    full = QuotaSummary(name="q", hard={"limits.memory": "300Mi"}, used={"limits.memory": "256Mi"})
    roomy = QuotaSummary(name="q", hard={"limits.memory": "10Gi"}, used={"limits.memory": "256Mi"})
    blocked = rules_decision(RULES, situation("KubeContainerOOMKilled", POD_LABELS,
                                              context=deployment_context(quota=full)))[1]
    allowed = rules_decision(RULES, situation("KubeContainerOOMKilled", POD_LABELS,
                                              context=deployment_context(quota=roomy)))[1]
    assert blocked.action == "notify_only" and "ResourceQuota" in blocked.parameters["reason"]
    assert allowed.action == "increase_memory_limits"


def test_pvc_on_a_storage_class_without_expansion_is_not_expanded() -> None:
    sit = situation("KubePersistentVolumeFillingUp", {"namespace": NS, "persistentvolumeclaim": "data"},
                    ResourceRef(kind="PersistentVolumeClaim", name="data", namespace=NS), {"pvc.expandable": False})
    result = rules_decision(RULES, sit)[1]
    assert result.action == "notify_only" and result.rule_id == "pv-filling-up+pvc-not-expandable"


def test_workload_target_comes_from_the_cluster_when_the_alert_only_names_a_pod() -> None:
    # The pod name does not follow the Deployment pattern, so labels alone give a bare Pod target.
    pod = ResourceRef(kind="Pod", name="web-odd-name", namespace=NS)
    ctx = deployment_context(pod_state="CrashLoopBackOff", last_terminated="OOMKilled").model_copy(
        update={"target": pod})
    result = rules_decision(RULES, situation("KubePodCrashLooping", {**POD_LABELS, "pod": "web-odd-name"}, pod,
                                             context=ctx))[1]
    assert result.action == "increase_memory_limits" and result.target == DEPLOY


def test_unobserved_facts_never_satisfy_a_condition() -> None:
    # No cluster: a crash loop is not known to follow a rollout, so no rollback.
    result = analyze_signals(RULES, [signal("KubePodCrashLooping", **POD_LABELS)], DEPLOY)
    assert "workload.recent_rollout" not in result.facts
    # Nor is a crash observed: the restart the rule recommends is not proposed without evidence.
    assert result.action == "notify_only" and result.alternatives[0].action == "restart_pod"
    assert "not proposed" in result.parameters["reason"]


def test_candidates_are_rule_actions_and_alternatives_minus_guards() -> None:
    outcome = decide(RULES, situation("KubePodCrashLooping", POD_LABELS))
    assert {"restart_pod", "rollback_deployment", "collect_diagnostics", "notify_only"} <= outcome.candidates
    assert "drain_node" not in outcome.candidates and "cleanup_orphaned_pvcs" not in outcome.candidates


# --- user rule files ---------------------------------------------------------------------------------

def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_user_rules_come_first_and_replace_packaged_rules_with_the_same_id(tmp_path: Path) -> None:
    user = write(tmp_path, "mine.yaml", """
version: 2
rules:
  - id: crashloop
    alerts: [KubePodCrashLooping]
    action: collect_diagnostics
    target: pod
    confidence: 0.5
    root_cause: "ours: look first"
  - id: payments-crashloop
    alerts: [KubePodCrashLooping]
    when: {namespace: payments}
    action: notify_only
    target: workload
    confidence: 0.9
    root_cause: "payments is paged, never touched"
guards:
  - id: no-restarts-on-fridays
    facts: {cluster.available: false}
    forbid: [restart_pod]
    reason: "test guard"
""")
    rules = load_rules(user)
    assert rules.sources == [str(user), "packaged"]
    assert [r.id for r in rules.rules][:2] == ["crashloop", "payments-crashloop"]
    assert sum(1 for r in rules.rules if r.id == "crashloop") == 1
    assert len(rules.guards) == len(RULES.guards) + 1  # packaged guards stay
    payments = {"namespace": "payments", "pod": "api-5f6d7c8b9-abcde"}
    result = analyze_signals(rules, [signal("KubePodCrashLooping", **payments)],
                             ResourceRef(kind="Deployment", name="api", namespace="payments"))
    assert result.rule_id == "crashloop"  # the user's override of the packaged id, first in order
    assert result.action == "collect_diagnostics"


def test_a_bad_user_rule_file_is_refused_with_its_name_and_field(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", """
version: 2
rules:
  - id: typo
    alerts: [KubePodCrashLooping]
    action: restart_pods
    confidence: 0.5
    root_cause: x
""")
    with pytest.raises(RulesError) as err:
        load_rules(bad)
    assert "bad.yaml" in str(err.value) and "restart_pods" in str(err.value) and "restart_pod" in str(err.value)
    with pytest.raises(RulesError, match=r"missing\.yaml"):
        load_rules(tmp_path / "missing.yaml")


# --- the common kube-prometheus alerts, from their labels alone (no cluster view) ---------------------------

API = ResourceRef(kind="Deployment", name="api", namespace="shop")


@pytest.mark.parametrize(("alert", "labels", "target", "action", "target_kind"), [
    # Without the cluster's view nothing shows that a restart helps: a human is told what was recommended.
    ("KubePodCrashLooping", {"namespace": "shop", "pod": "api-5f6d7c-xyz12", "container": "api"}, API,
     "notify_only", "Pod"),
    ("KubePodCrashLooping", {"namespace": "shop", "pod": "api-5f6d7c-xyz12", "reason": "OOMKilled"}, API,
     "increase_memory_limits", "Deployment"),
    ("KubePodNotReady", {"namespace": "shop", "pod": "api-5f6d7c-xyz12"}, API, "notify_only", "Pod"),
    ("KubeDeploymentReplicasMismatch", {"namespace": "shop", "deployment": "api"}, API, "notify_only",
     "Deployment"),
    ("KubeContainerWaiting", {"namespace": "shop", "pod": "api-5f6d7c-xyz12", "container": "api"}, API,
     "collect_diagnostics", "Pod"),
    ("KubeHpaMaxedOut", {"namespace": "shop", "horizontalpodautoscaler": "api"},
     ResourceRef(kind="HorizontalPodAutoscaler", name="api", namespace="shop"), "update_hpa",
     "HorizontalPodAutoscaler"),
    ("KubePersistentVolumeFillingUp", {"namespace": "db", "persistentvolumeclaim": "data-pg-0"},
     ResourceRef(kind="PersistentVolumeClaim", name="data-pg-0", namespace="db"), "expand_pvc",
     "PersistentVolumeClaim"),
    ("KubeNodeNotReady", {"node": "worker-1"}, ResourceRef(kind="Node", name="worker-1"), "cordon_node", "Node"),
    ("KubeContainerOOMKilled", {"namespace": "shop", "pod": "api-5f6d7c-xyz12"}, API, "increase_memory_limits",
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
                                            reason="OOMKilled")], API)
    assert result.action != "rollback_deployment"


def test_invalid_decision_falls_back_to_notify_only_with_reason() -> None:
    # A pod label that is not a valid Kubernetes name cannot become a restart target.
    result = analyze_signals(RULES, [signal("KubePodCrashLooping", namespace="shop", pod="../../etc")], API)
    assert result.action == "notify_only"
    assert result.fallback_reason and "restart_pod" in result.fallback_reason


def test_untrusted_label_values_are_data_not_templates() -> None:
    text = render("pod {labels.pod} {target}", {"pod": "{labels.secret}\x1b[31m\nrm -rf /"}, API)
    assert text == "pod {labels.secret} [31m rm -rf / Deployment/shop/api"
