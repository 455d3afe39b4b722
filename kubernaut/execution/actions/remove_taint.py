"""remove_taint: Remove a taint (by key, optionally effect) from a node."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.nodes import TaintEffect, TaintKey
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, must_get
from kubernaut.execution.operations.nodes import _taints, set_taints, taint_matches
from kubernaut.models.resource import ResourceRef


class RemoveTaintParams(ActionParams):
    """Effect optional: without it every taint with the key goes, which is what 'untaint' usually means."""

    key: TaintKey = Field(description="Key of the taint to remove.")
    effect: TaintEffect | None = Field(
        default=None, description="Only the taint with this effect; omitted = all effects."
    )


def _plan_remove_taint(target: ResourceRef, params: RemoveTaintParams) -> list[str]:
    which = f"key={params.key}" + (f", effect={params.effect.value}" if params.effect else " (all effects)")
    return [
        f"GET {ref(target)} (record the matching taints for the inverse; no-op when none match {which})",
        f"PATCH {ref(target)} spec.taints -= [{which}] (JSON patch with test on resourceVersion)",
    ]


class RemoveTaint(Operation):
    name = "remove_taint"

    async def prepare(self, ctx: Context, target: ResourceRef, params: RemoveTaintParams,
                      undo: dict[str, Any] | None) -> Prepared:
        node = await must_get(ctx, target)
        taints = _taints(node)
        effect = params.effect.value if params.effect else None
        removed = [t for t in taints if taint_matches(t, params.key, effect)]
        if not removed:
            raise Refused(f"node {target.name} has no taint {params.key}" + (f":{effect}" if effect else ""))
        write = set_taints(node, target, [t for t in taints if not taint_matches(t, params.key, effect)])
        return Prepared([write], {"removed": removed}, {"key": params.key, "effect": effect})

    def inverse(self, target: ResourceRef, params: RemoveTaintParams, record: dict[str, Any]) -> dict[str, Any] | None:
        removed = record.get("removed") or []
        if len(removed) != 1:  # one taint_node per removed taint: a single request cannot restore several
            return None
        taint = removed[0]
        return self.inverse_request("taint_node", target,
                               {"key": taint["key"], "value": taint.get("value", ""), "effect": taint["effect"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: RemoveTaintParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        node = await must_get(ctx, target)
        left = [t for t in _taints(node) if taint_matches(t, after["key"], after.get("effect"))]
        if left:
            return Verification(False, [f"taint {after['key']} is present again"])
        return Verification(True, [f"no taint {after['key']}" + (f":{after['effect']}" if after.get("effect") else "")])


SPEC = declared(__name__, params=RemoveTaintParams, planner=_plan_remove_taint, operation=RemoveTaint())
