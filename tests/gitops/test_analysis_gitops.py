"""The analysis and GitOps: with a repository configured for the owner the rules keep the real fix (the
orchestrator proposes it in Git); without one the guard turns it into a recommendation, as before."""

from __future__ import annotations

from kubernaut.context.models import Traits
from kubernaut.gitops.models import GitOpsInfo
from tests.analysis.test_rules import POD_LABELS, RULES, deployment_context, rules_decision, situation

ARGO = Traits(gitops_managed=True, gitops_tool="argocd")


def decided(configured: bool):
    ctx = deployment_context(pod_state="CrashLoopBackOff", last_terminated="OOMKilled", traits=ARGO)
    ctx.gitops = GitOpsInfo(tool="argocd", app="shop", repo="https://git.example.com/org/deploy", path="apps/shop",
                            via="test", repository_configured=configured)
    sit = situation("KubePodCrashLooping", POD_LABELS, context=ctx)
    return sit, rules_decision(RULES, sit)[1]


def test_with_a_configured_repository_the_fix_stays_for_the_orchestrator_to_propose() -> None:
    sit, result = decided(True)
    assert result.action == "increase_memory_limits" and sit.facts["gitops.proposable"] is True
    assert sit.facts["gitops.repo"] == "https://git.example.com/org/deploy" and sit.facts["gitops.tool"] == "argocd"


def test_without_one_the_guard_recommends_the_change_in_git() -> None:
    sit, result = decided(False)
    assert result.action == "notify_only" and result.rule_id.endswith("+gitops-fix-in-git")
    assert sit.facts["gitops.proposable"] is False


def test_the_do_no_harm_screen_lets_a_proposable_fix_through_and_still_refuses_a_live_one() -> None:
    from tests.analysis.test_diagnosis import analyse, base, crashing

    for configured, action in ((True, "increase_memory_limits"), (False, "notify_only")):
        ctx = base(pods=[crashing(reason="OOMKilled", code=137)], traits=ARGO)
        ctx.gitops = GitOpsInfo(tool="argocd", app="shop", repo="https://git.example.com/org/deploy", via="test",
                                repository_configured=configured)
        result = analyse("KubePodCrashLooping", ctx)
        assert result.action == action, (configured, result.rule_id, result.reasoning)
        assert any(f.kind.value == "ownership.gitops" for f in result.findings)
