"""uncordon_node: Make a cordoned node schedulable again."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Context, Refused
from kubernaut.execution.operations.flags import SpecFlag
from kubernaut.execution.operations.nodes import _conditions
from kubernaut.models.resource import ResourceRef


def _plan_uncordon(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (refuse unless the node is Ready without memory/disk/PID pressure)",
        f"PATCH {ref(target)} spec.unschedulable=false",
    ]


PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure")


class UncordonNode(SpecFlag):
    async def check(self, ctx: Context, target: ResourceRef, obj: Obj, undo: dict[str, Any] | None) -> list[str]:
        conditions = _conditions(obj)
        if conditions.get("Ready") != "True":
            raise Refused(f"node {target.name} is not Ready (Ready={conditions.get('Ready', 'unknown')})")
        pressure = [c for c in PRESSURE if conditions.get(c) == "True"]
        if pressure:
            raise Refused(f"node {target.name} reports {', '.join(pressure)}")
        return []


OPERATION = UncordonNode("uncordon_node", field="unschedulable", value=False, undone_by="cordon_node",
                         refusal="node {name} is not cordoned", clear=True)


SPEC = declared(__name__, params=NoParams, planner=_plan_uncordon, operation=OPERATION)
