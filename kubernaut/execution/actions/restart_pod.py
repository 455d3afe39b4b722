"""restart_pod: Delete one controller-managed pod so its controller replaces it with a fresh one."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.catalog.pods import RestartPodParams, _grace
from kubernaut.execution.operations.pods import ReplacePod
from kubernaut.models.resource import ResourceRef


def _plan_restart(target: ResourceRef, params: RestartPodParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record uid and ownerReferences; refuse unless a controller owns the pod)",
            f"DELETE {ref(target)}{_grace(params)} preconditions.uid=<recorded uid>",
            f"WATCH v1 Pod in namespace {target.namespace} until the controller's replacement is Ready",
        ]
    )


OPERATION = ReplacePod("restart_pod", "delete", removed="deleted_uid")


SPEC = declared(__name__, params=RestartPodParams, planner=_plan_restart, operation=OPERATION)
