"""uncordon_node: Make a cordoned node schedulable again."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.nodes import _conditions
from kubernaut.execution.operations.objects import with_rv
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


SPEC = declared(__name__, params=NoParams, planner=_plan_uncordon, operation=UncordonNode())
