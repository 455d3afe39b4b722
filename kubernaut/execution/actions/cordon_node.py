"""cordon_node: Mark a node unschedulable; running pods stay where they are."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import with_rv
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


SPEC = declared(__name__, params=NoParams, planner=_plan_cordon, operation=CordonNode())
