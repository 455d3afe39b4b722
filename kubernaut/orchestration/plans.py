"""Multi-step remediations: some actions run after a prerequisite action, in order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from kubernaut.execution.catalog import CATALOG, ActionSpec
from kubernaut.models.resource import ResourceRef


class PlannedAction(BaseModel):
    action: str
    target: ResourceRef
    parameters: dict[str, Any] = Field(default_factory=dict)
    purpose: str = "remediation"


def plan_for(action: str, target: ResourceRef, parameters: dict[str, Any],
             catalog: Mapping[str, ActionSpec] | None = None) -> list[PlannedAction]:
    """The action preceded by the preludes its catalog entry declares (ActionSpec.preludes)."""
    spec = (CATALOG if catalog is None else catalog).get(action)
    steps = [PlannedAction(action=prelude.action, target=target, parameters=dict(prelude.parameters),
                           purpose=prelude.purpose) for prelude in (spec.preludes if spec else ())]
    steps.append(PlannedAction(action=action, target=target, parameters=parameters))
    return steps
