"""scale_statefulset: Set the replica count of a StatefulSet (0..500); ordered, and storage is kept on scale-down."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.plan import PlanDraft
from kubernaut.execution.catalog.workloads import ScaleParams, _scale_draft
from kubernaut.execution.operations.workloads import Scale
from kubernaut.models.resource import ResourceRef


class ScaleStatefulSetParams(ScaleParams):
    """Distinct class so the schema and audit name the action."""


def _plan_scale_statefulset(target: ResourceRef, params: ScaleStatefulSetParams) -> PlanDraft:
    draft = _scale_draft(target, params)
    draft.warnings.append(
        "scaling a StatefulSet down removes the highest ordinals; their PersistentVolumeClaims are kept"
    )
    return draft


SPEC = declared(
    __name__,
    params=ScaleStatefulSetParams,
    planner=_plan_scale_statefulset,
    operation=Scale("scale_statefulset"),
)
