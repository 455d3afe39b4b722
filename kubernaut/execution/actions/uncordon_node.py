"""uncordon_node: Make a cordoned node schedulable again."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.nodes import _NODE_PATCH, NODE_KINDS
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import Risk, ref
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.nodes import _conditions
from kubernaut.execution.operations.objects import with_rv
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef


def _plan_uncordon(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (refuse unless the node is Ready without memory/disk/PID pressure)",
        f"PATCH {ref(target)} spec.unschedulable=false",
    ]


PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")


class UncordonNode(Operation):
    name = "uncordon_node"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        node = await must_get(ctx, target)
        if not (node.get("spec") or {}).get("unschedulable"):
            raise Refused(f"node {target.name} is not cordoned")
        conditions = _conditions(node)
        if conditions.get("Ready") != "True":
            raise Refused(f"node {target.name} is not Ready (Ready={conditions.get('Ready', 'unknown')})")
        pressure = [c for c in PRESSURE if conditions.get(c) == "True"]
        if pressure:
            raise Refused(f"node {target.name} reports {', '.join(pressure)}")
        write = Write("patch", "Node", target.name, None, with_rv(node, {"spec": {"unschedulable": None}}),
                      before=node)
        return Prepared([write], {"unschedulable": True}, {"unschedulable": False})

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": "cordon_node", "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        node = await must_get(ctx, target)
        cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        return Verification(not cordoned, [f"spec.unschedulable={str(cordoned).lower()}"])


SPEC = ActionSpec(
    name="uncordon_node",
    helps_when=(K.NODES_CORDONED,),
    harmful_when=(K.NODE_NOT_READY, K.NODE_PRESSURE),
    summary="Make a cordoned node schedulable again.",
    params=NoParams,
    target_kinds=NODE_KINDS,
    risk=Risk.LOW,
    sensitive=True,
    preconditions=("the node is Ready", "no memory, disk or PID pressure condition is true"),
    when_to_use="A cordoned node has recovered (Ready, pressure gone, maintenance over).",
    when_not_to_use=(
        "Do not uncordon a node cordoned by someone else for maintenance (check who and why), nor one "
        "still NotReady or under pressure."
    ),
    verification="spec.unschedulable is false, pods schedule onto it and stay Ready.",
    inverse="cordon_node",
    inverse_note="cordon_node on the same node",
    rbac=(_NODE_PATCH,),
    planner=_plan_uncordon,
    family=Family.NODE,
    operation=UncordonNode(),
)
