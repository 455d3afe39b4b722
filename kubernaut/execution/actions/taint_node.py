"""taint_node: Add a taint to a node (NoSchedule, PreferNoSchedule or NoExecute)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.grammar import LabelValue
from kubernaut.execution.catalog.nodes import TaintEffect, TaintKey
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, Risk, ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, must_get
from kubernaut.execution.operations.nodes import _taints, set_taints, taint_matches
from kubernaut.models.resource import ResourceRef


class TaintNodeParams(ActionParams):
    """Key and value follow the label grammar the API server enforces for taints."""

    key: TaintKey = Field(description="Taint key, e.g. kubernaut.ai/quarantine.")
    value: LabelValue = Field(default="", description="Taint value (may be empty).")
    effect: TaintEffect = Field(description="NoExecute also evicts running pods without a toleration.")


def _plan_taint(target: ResourceRef, params: TaintNodeParams) -> PlanDraft:
    taint = f"{params.key}={params.value}:{params.effect.value}"
    risk = Risk.HIGH if params.effect is TaintEffect.NO_EXECUTE else None
    warnings = (
        ["NoExecute evicts every running pod on the node that does not tolerate the taint"]
        if params.effect is TaintEffect.NO_EXECUTE
        else []
    )
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record spec.taints and resourceVersion; no-op when {taint} already present)",
            f"PATCH {ref(target)} spec.taints += "
            f"{{key: {params.key}, value: {params.value!r}, effect: {params.effect.value}}} (JSON patch with "
            "test on resourceVersion)",
        ],
        warnings=warnings,
        risk=risk,
    )


class TaintNode(Operation):
    name = "taint_node"

    async def prepare(self, ctx: Context, target: ResourceRef, params: TaintNodeParams,
                      undo: dict[str, Any] | None) -> Prepared:
        node = await must_get(ctx, target)
        taints = _taints(node)
        effect = params.effect.value
        if any(taint_matches(t, params.key, effect) for t in taints):
            raise Refused(f"node {target.name} already has a {params.key}:{effect} taint")
        taint: dict[str, Any] = {"key": params.key, "effect": effect}
        if params.value:
            taint["value"] = params.value
        write = set_taints(node, target, [*taints, taint])
        notes = ["NoExecute evicts every pod on the node that does not tolerate the taint"] if effect == "NoExecute" \
            else []
        return Prepared([write], {"taints": taints}, {"taint": taint}, notes)

    def inverse(self, target: ResourceRef, params: TaintNodeParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return self.inverse_request("remove_taint", target, {"key": params.key, "effect": params.effect.value})

    async def verify(self, ctx: Context, target: ResourceRef, params: TaintNodeParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        node = await must_get(ctx, target)
        want = after["taint"]
        present = any(t.get("key") == want["key"] and t.get("effect") == want["effect"]
                      and (t.get("value") or "") == want.get("value", "") for t in _taints(node))
        return Verification(present, [f"taint {want['key']}={want.get('value', '')}:{want['effect']} "
                                      f"{'present' if present else 'absent'}"])


SPEC = declared(__name__, params=TaintNodeParams, planner=_plan_taint, operation=TaintNode())
