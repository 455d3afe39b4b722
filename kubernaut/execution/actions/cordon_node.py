"""cordon_node: Mark a node unschedulable; running pods stay where they are."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.operations.flags import SpecFlag

OPERATION = SpecFlag("cordon_node", field="unschedulable", value=True, undone_by="uncordon_node",
                     refusal="node {name} is already cordoned")


SPEC = declared(__name__, params=NoParams, planner=OPERATION.plan, operation=OPERATION)
