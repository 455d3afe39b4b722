"""cordon_node: Mark a node unschedulable; running pods stay where they are."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.nodes import _NODE_PATCH, NODE_KINDS
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import Risk, ref
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import with_rv
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef


def _plan_cordon(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (record spec.unschedulable for the inverse)",
        f"PATCH {ref(target)} spec.unschedulable=true",
    ]


class CordonNode(Operation):
    name = "cordon_node"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        node = await must_get(ctx, target)
        if (node.get("spec") or {}).get("unschedulable"):
            raise Refused(f"node {target.name} is already cordoned")
        write = Write("patch", "Node", target.name, None, with_rv(node, {"spec": {"unschedulable": True}}), before=node)
        return Prepared([write], {"unschedulable": False}, {"unschedulable": True})

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": "uncordon_node", "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        node = await must_get(ctx, target)
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        return Verification(cordoned, [f"spec.unschedulable={str(cordoned).lower()}"])


SPEC = ActionSpec(
    name="cordon_node",
    helps_when=(K.NODE_NOT_READY, K.NODE_PRESSURE),
    harmful_when=(K.TARGET_HEALTHY,),
    summary="Mark a node unschedulable; running pods stay where they are.",
    params=NoParams,
    target_kinds=NODE_KINDS,
    risk=Risk.MEDIUM,
    sensitive=True,
    preconditions=(
        "the node exists",
        "the remaining nodes have room for pods that will be scheduled meanwhile",
        "the blast-radius budget allows another unschedulable node",
    ),
    when_to_use=(
        "A node shows hardware, kernel, disk or network trouble (NotReady flapping, disk pressure, "
        "repeated pod failures only there) and should receive no new pods while it is investigated."
    ),
    when_not_to_use=(
        "Do not cordon when the problem follows a workload across nodes. Do not cordon several nodes at "
        "once, nor the last schedulable node of a pool."
    ),
    verification="spec.unschedulable is true and no new pods are scheduled onto the node.",
    inverse="uncordon_node",
    inverse_note="uncordon_node on the same node (only when it was schedulable before)",
    rbac=(_NODE_PATCH,),
    planner=_plan_cordon,
    family=Family.NODE,
    operation=CordonNode(),
)
