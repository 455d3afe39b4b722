"""restart_pod: Delete one controller-managed pod so its controller replaces it with a fresh one."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.catalog.pods import RestartPodParams, _grace
from kubernaut.execution.operations.base import Context, Operation, Prepared, Verification, Write
from kubernaut.execution.operations.pods import _prepare_pod, _verify_replaced
from kubernaut.models.resource import ResourceRef


def _plan_restart(target: ResourceRef, params: RestartPodParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record uid and ownerReferences; refuse unless a controller owns the pod)",
            f"DELETE {ref(target)}{_grace(params)} preconditions.uid=<recorded uid>",
            f"WATCH v1 Pod in namespace {target.namespace} until the controller's replacement is Ready",
        ]
    )


class RestartPod(Operation):
    name = "restart_pod"

    async def prepare(self, ctx: Context, target: ResourceRef, params: RestartPodParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pod, record = await _prepare_pod(ctx, target, need_controller=True, action=self.name)
        write = Write("delete", "Pod", target.name, target.namespace, before=pod, uid=record["uid"],
                      grace_period_seconds=params.grace_period_seconds)
        return Prepared([write], record, {"deleted_uid": record["uid"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: RestartPodParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        return await _verify_replaced(ctx, target, record)


SPEC = declared(__name__, params=RestartPodParams, planner=_plan_restart, operation=RestartPod())
