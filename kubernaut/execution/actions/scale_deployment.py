"""scale_deployment: Set the replica count of a Deployment (0..500; 0 stops it)."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.workloads import ScaleParams, _scale_draft
from kubernaut.execution.operations.workloads import Scale


class ScaleDeploymentParams(ScaleParams):
    """Distinct class so the schema and audit name the action."""


SPEC = declared(__name__, params=ScaleDeploymentParams, planner=_scale_draft, operation=Scale("scale_deployment"))
