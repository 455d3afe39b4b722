"""Which way a remediation reaches a GitOps-managed target: live, propose (a change in Git only) or both.

A pure function of the policy file's ``gitops`` section, the incident's environment, the action and the
detected owner (``kubernaut/gitops/detect.py``). Only actions that change a declared spec have a Git form;
the others (restarts, evictions, diagnostics) stay live: there is nothing in Git to change.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict

from kubernaut.gitops.models import GitOpsInfo
from kubernaut.orchestration.policy import UNKNOWN_ENVIRONMENT, GitOpsMode, GitOpsPolicy

# The actions whose change is a field of a manifest in Git (kubernaut/gitops/changes.py knows each).
PROPOSABLE = frozenset({
    "scale_deployment", "scale_statefulset", "set_image", "increase_memory_limits", "increase_cpu_limits",
    "update_hpa", "rollback_deployment", "relax_pdb", "suspend_cronjob",
})


class ModeDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    mode: GitOpsMode
    rule: str
    reason: str


def _any(patterns: list[str], value: str | None) -> bool:
    return not patterns or any(fnmatchcase(value or "", p) for p in patterns)


def decide_mode(policy: GitOpsPolicy, *, action: str, environment: str, namespace: str | None,
                gitops: GitOpsInfo | None, unknown_environment: str = "production") -> ModeDecision:
    if gitops is None:
        return ModeDecision(mode="live", rule="not-gitops-managed", reason="no GitOps or Helm owner detected")
    if action not in PROPOSABLE:
        return ModeDecision(mode="live", rule="no-git-form",
                            reason=f"{action} changes no declared field: nothing to change in Git")
    if environment == UNKNOWN_ENVIRONMENT:
        environment = unknown_environment
    for rule in policy.rules:
        when = rule.when
        if (_any(when.environment, environment) and _any(when.action, action) and _any(when.namespace, namespace)
                and (not when.tool or gitops.tool in when.tool)):
            return ModeDecision(mode=rule.mode, rule=rule.name,
                                reason=f"{gitops.tool} owns the target ({gitops.app or '?'}): {rule.mode} "
                                       f"({rule.name}, environment {environment})")
    # No rule: the safe reading, no live change on a target someone else reconciles.
    return ModeDecision(mode="propose", rule="default", reason="no gitops rule matched: propose")
