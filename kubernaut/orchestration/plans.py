"""Multi-step remediations: some actions run after a prerequisite action, in order."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kubernaut.models.resource import ResourceRef


class PlannedAction(BaseModel):
    action: str
    target: ResourceRef
    parameters: dict[str, Any] = Field(default_factory=dict)
    purpose: str = "remediation"


# Evidence disappears with a restart: gather it first. A drain starts with a cordon so nothing new lands.
_PRELUDES: dict[str, tuple[str, dict[str, Any], str]] = {
    "restart_pod": ("collect_diagnostics", {"include_events": True, "include_logs": True},
                    "keep the evidence a restart destroys"),
    "delete_pod": ("collect_diagnostics", {"include_events": True, "include_logs": True},
                   "keep the evidence a deletion destroys"),
    "rollout_restart": ("collect_diagnostics", {"include_events": True, "include_logs": False},
                        "keep the evidence a restart destroys"),
    "drain_node": ("cordon_node", {}, "stop new pods landing on the node before evicting"),
}


def plan_for(action: str, target: ResourceRef, parameters: dict[str, Any]) -> list[PlannedAction]:
    steps: list[PlannedAction] = []
    prelude = _PRELUDES.get(action)
    if prelude is not None:
        name, params, why = prelude
        steps.append(PlannedAction(action=name, target=target, parameters=params, purpose=why))
    steps.append(PlannedAction(action=action, target=target, parameters=parameters))
    return steps
