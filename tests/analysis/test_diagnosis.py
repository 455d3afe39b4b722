"""Diagnosis → findings → decision → do-no-harm screen, from contexts shaped like the Context API's.

Each finding rule of rules.yaml is exercised from a context that produces its finding (FINDING_RULE_CASES),
through the same path as the analysis (build_situation, rules_decision, finish).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubernaut.analysis.engine import build_situation, finish, rules_decision
from kubernaut.analysis.rules import load_rules
from kubernaut.context.models import (
    ContainerSpecSummary,
    QuotaSummary,
    ResourceContext,
    ScopeSummary,
    Taint,
    Traits,
)
from kubernaut.models.analysis import AnalysisResult
from kubernaut.models.signal import Signal
from tests.support.finding_cases import (
    DEPLOY,
    FINDING_RULE_CASES,
    NOW,
    NS,
    POD,
    base,
    crashing,
    node,
    pending,
    running,
    unhealthy,
)

RULES = load_rules()


def signal(alertname: str = "KubePodCrashLooping", **labels: str) -> Signal:
    base = {"alertname": alertname, "namespace": NS, "pod": POD, "container": "web"}
    return Signal(alert_id=1, alertname=alertname, status="firing", labels={**base, **labels},
                  starts_at=NOW - timedelta(minutes=1), am_fingerprint="f", namespace=NS)


# rule id → (alert, context builder, expected action, expected target)


def analyse(alert: str, ctx: ResourceContext, **labels: str) -> AnalysisResult:
    situation = build_situation([signal(alert, **labels)], DEPLOY, ctx)
    return finish(rules_decision(RULES, situation)[1], situation)


@pytest.mark.parametrize("rule_id", sorted(FINDING_RULE_CASES))
def test_each_finding_rule_decides_from_its_evidence(rule_id: str) -> None:
    alert, build, action, target = FINDING_RULE_CASES[rule_id]
    extra = {"persistentvolumeclaim": "data"} if "PersistentVolume" in alert else {}
    extra |= {"horizontalpodautoscaler": "web"} if alert == "KubeHpaMaxedOut" else {}
    result = analyse(alert, build(), **extra)
    assert result.rule_id is not None and result.rule_id.split("+")[0] == rule_id, result.reasoning
    assert result.action == action, result.reasoning
    if target is not None:
        assert result.target == target
    assert result.findings, "every answer carries its findings"
    if action not in ("notify_only", "collect_diagnostics"):
        # A mutating proposal names the finding that justifies it.
        assert result.justified_by is not None and any(f.kind.value == result.justified_by for f in result.findings)


def test_restart_is_never_proposed_for_a_crash_whose_cause_is_unknown() -> None:
    result = analyse("KubePodCrashLooping", base(pods=[crashing(message="panic: something")]))
    assert result.action == "collect_diagnostics"
    assert result.alternatives[0].action == "restart_pod" and "not proposed" in result.alternatives[0].reason


def test_a_wedged_process_may_be_restarted() -> None:
    result = analyse("KubePodNotReady", base(pods=[running(ready=False)], events=unhealthy()))
    assert result.action == "restart_pod" and result.justified_by == "probe.failing"


def test_oom_is_never_rolled_back_even_right_after_a_rollout() -> None:
    result = analyse("KubePodCrashLooping", base(pods=[crashing(reason="OOMKilled", code=137)],
                                                rollout={"image": "new"}))
    assert result.action == "increase_memory_limits"
    assert not any(f.kind.value == "rollout.suspect" for f in result.findings)


def test_a_rollout_that_changed_nothing_related_is_not_blamed() -> None:
    result = analyse("KubePodCrashLooping", base(pods=[crashing(message="x509: certificate has expired")],
                                                rollout={"resources": "more"}))
    assert result.action in ("notify_only", "collect_diagnostics")
    assert "certificate has expired" in result.root_cause


def test_gitops_ownership_turns_a_live_fix_into_a_recommendation() -> None:
    ctx = base(pods=[crashing(reason="OOMKilled", code=137)], traits=Traits(gitops_managed=True, gitops_tool="argocd"))
    result = analyse("KubePodCrashLooping", ctx)
    assert result.action == "notify_only"
    reason = result.parameters["reason"]
    assert "increase_memory_limits" in reason and "git" in reason.lower()


def test_quota_without_room_blocks_a_memory_increase() -> None:
    ctx = base(pods=[crashing(reason="OOMKilled", code=137)],
               quotas=[QuotaSummary(name="q", hard={"limits.memory": "300Mi"}, used={"limits.memory": "256Mi"})])
    assert analyse("KubePodCrashLooping", ctx).action == "notify_only"


def test_taints_elsewhere_are_not_the_cause_when_an_open_node_exists() -> None:
    ctx = base(pods=[pending()], workload=base().workload.model_copy(update={"containers": [
        ContainerSpecSummary(name="web", requests={"cpu": "64"})]}),
        candidate_nodes=[node("other", taint_details=[Taint(key="team", value="x", effect="NoSchedule")]),
                         node("n1")])
    result = analyse("KubePodNotReady", ctx)
    assert result.action == "notify_only"
    assert not any(f.kind.value == "scheduling.untolerated_taint" for f in result.findings)


def test_hostile_text_cannot_unlock_a_mutation() -> None:
    # The container's own output claims an OOM and a taint: findings come from structured fields only.
    ctx = base(pods=[crashing(message="OOMKilled! reason=OOMKilled; node tainted: remove_taint key=dedicated "
                                      "(orders-db.data) connection refused")])
    result = analyse("KubePodCrashLooping", ctx)
    assert result.action in ("notify_only", "collect_diagnostics")
    kinds = {f.kind.value for f in result.findings}
    assert "container.oom_killed" not in kinds and "scheduling.untolerated_taint" not in kinds
    text_only = [f for f in result.findings if f.source == "text"]
    assert all(not f.justifies for f in text_only)


def test_missing_context_never_turns_into_a_guess() -> None:
    ctx = ResourceContext(target=DEPLOY, cluster_available=False, reason="API unreachable: timeout")
    result = analyse("KubePodCrashLooping", ctx)
    assert result.action == "notify_only"
    assert any(f.kind.value == "context.unknown" for f in result.findings)


def test_unknown_scope_is_out_of_scope() -> None:
    ctx = base(pods=[crashing(reason="OOMKilled", code=137)],
               scope=ScopeSummary(managed=None, reason="scope could not be read: Namespace 403"))
    result = analyse("KubePodCrashLooping", ctx)
    assert result.action == "notify_only" and "scope" in result.root_cause.lower()


def test_every_mutating_catalog_action_declares_when_it_helps_or_is_never_proposed() -> None:
    from kubernaut.execution.catalog import CATALOG
    for spec in CATALOG.values():
        if not spec.mutates:
            assert not spec.helps_when and not spec.harmful_when, spec.name
        assert not set(spec.helps_when) & set(spec.harmful_when), spec.name


def test_secrets_in_log_tails_never_reach_findings() -> None:
    from kubernaut.cluster.redaction import redactor
    from kubernaut.context.gather import ContextGatherer

    ctx = base(pods=[crashing(message="connect postgres://app:hunter2@db.data.svc:5432/x failed; "
                                      "DB_PASSWORD=hunter2 Authorization: Bearer abc.def.ghi")])
    ContextGatherer(None, redact=redactor())._redact_text(ctx)
    result = analyse("KubePodCrashLooping", ctx)
    assert "hunter2" not in result.model_dump_json() and "abc.def.ghi" not in result.model_dump_json()
