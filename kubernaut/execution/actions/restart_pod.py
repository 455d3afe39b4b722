"""restart_pod: Delete one controller-managed pod so its controller replaces it with a fresh one."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.plan import PlanDraft, Risk, ref
from kubernaut.execution.catalog.pods import _POD_READ, POD_KINDS, RestartPodParams, _grace
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.spec import ActionSpec, Family, Prelude
from kubernaut.execution.operations.base import Context, Operation, Prepared, Verification, Write
from kubernaut.execution.operations.pods import _prepare_pod, _verify_replaced
from kubernaut.models.finding import RESTART_FUTILE
from kubernaut.models.finding import FindingKind as K
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


SPEC = ActionSpec(
    name="restart_pod",
    preludes=(Prelude("collect_diagnostics", "keep the evidence a restart destroys",
                      {"include_events": True, "include_logs": True}),),
    helps_when=(K.PROBE_FAILING,),
    harmful_when=(*RESTART_FUTILE,),
    summary="Delete one controller-managed pod so its controller replaces it with a fresh one.",
    params=RestartPodParams,
    target_kinds=POD_KINDS,
    risk=Risk.LOW,
    preconditions=(
        "the pod exists and is owned by a controller (ReplicaSet, StatefulSet, DaemonSet, Job)",
        "the workload has other ready replicas, or a short interruption is acceptable",
    ),
    when_to_use=(
        "One pod of a replicated workload is stuck (deadlocked, leaking, wedged connection pool, "
        "CrashLoopBackOff after a transient dependency outage) while its siblings are healthy."
    ),
    when_not_to_use=(
        "Do not use on pods without a controller (use delete_pod knowingly, or notify_only). Do not use "
        "when every replica fails the same way: the cause is in the spec, config or a dependency, and a "
        "restart only resets the clock. Do not use for OOMKilled containers: raise memory with "
        "increase_memory_limits instead."
    ),
    verification=("A new pod with a different uid is Ready, and its restart count stays at 0 through the window."),
    inverse_note=("none: a restarted pod cannot be un-restarted; the controller recreates it from the same spec"),
    rbac=(_POD_READ, RbacRule("", "pods", ("delete",))),
    planner=_plan_restart,
    family=Family.POD,
    operation=RestartPod(),
)
