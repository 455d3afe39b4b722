"""resume_gitops_self_heal: Let a GitOps owner revert live drift again (the inverse of the pause)."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.operations.gitops import SelfHeal, SelfHealParams, check_scope

OPERATION = SelfHeal("resume_gitops_self_heal", heal=True, undone_by="pause_gitops_self_heal")

SPEC = declared(__name__, params=SelfHealParams, planner=OPERATION.plan, operation=OPERATION,
                check=check_scope)
