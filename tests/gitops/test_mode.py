"""The GitOps mode per action and environment, from the policy file (kubernaut/orchestration/gitops_mode.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kubernaut.gitops.models import GitOpsInfo
from kubernaut.orchestration.gitops_mode import PROPOSABLE, decide_mode
from kubernaut.orchestration.policy import GitOpsPolicy, Policy, load_policy

ARGO = GitOpsInfo(tool="argocd", app="shop", via="test")


def mode(action: str, environment: str, info: GitOpsInfo | None = ARGO, policy: GitOpsPolicy | None = None) -> str:
    return decide_mode(policy or load_policy().gitops, action=action, environment=environment, namespace="ns",
                       gitops=info).mode


def test_packaged_defaults_propose_in_production_and_live_and_propose_elsewhere() -> None:
    assert mode("increase_memory_limits", "production") == "propose"
    assert mode("increase_memory_limits", "staging") == "live-and-propose"
    # An unknown environment is judged as production (orchestration.unknown_environment).
    assert mode("increase_memory_limits", "unknown") == "propose"
    assert load_policy().gitops.fallback_mode == "approval"


def test_unmanaged_targets_and_actions_without_a_git_form_stay_live() -> None:
    assert mode("increase_memory_limits", "production", None) == "live"
    assert mode("restart_pod", "production") == "live"
    assert {"scale_deployment", "set_image", "update_hpa", "relax_pdb", "suspend_cronjob",
            "rollback_deployment", "increase_cpu_limits"} <= PROPOSABLE


def test_rules_in_the_policy_file_choose_per_action_and_tool() -> None:
    policy = Policy.model_validate({"version": 1, "rules": [], "gitops": {"rules": [
        {"name": "scale-live", "when": {"action": ["scale_*"]}, "mode": "live"},
        {"name": "flux-propose", "when": {"tool": ["flux"]}, "mode": "propose"}], "fallback_mode": "escalate"}})
    assert mode("scale_deployment", "production", policy=policy.gitops) == "live"
    assert mode("set_image", "dev", GitOpsInfo(tool="flux", via="t"), policy=policy.gitops) == "propose"
    # No rule matches: no live change on a reconciled target.
    assert mode("set_image", "dev", policy=policy.gitops) == "propose"


def test_a_bad_mode_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="mode"):
        Policy.model_validate({"version": 1, "rules": [], "gitops": {"rules": [{"name": "x", "mode": "sometimes"}]}})
