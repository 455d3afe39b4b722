"""pause_gitops_self_heal: Stop a GitOps owner reverting live drift while a live fix waits for its PR."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.operations.gitops import SelfHeal, SelfHealParams, check_scope

OPERATION = SelfHeal("pause_gitops_self_heal", heal=False, undone_by="resume_gitops_self_heal")

SPEC = declared(__name__, params=SelfHealParams, planner=OPERATION.plan, operation=OPERATION,
                check=check_scope)
