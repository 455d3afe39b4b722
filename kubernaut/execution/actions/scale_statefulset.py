"""scale_statefulset: Set the replica count of a StatefulSet (0..500); ordered, and storage is kept on scale-down."""

from __future__ import annotations

from kubernaut.execution.catalog.plan import PlanDraft, Risk
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.catalog.workloads import _HPA_LIST, GITOPS_GUARD, ScaleParams, _scale_draft, _workload_rbac
from kubernaut.execution.operations.workloads import Scale
from kubernaut.models.finding import OWNED_ELSEWHERE, SCHEDULING_BLOCKED
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef


class ScaleStatefulSetParams(ScaleParams):
    """Distinct class so the schema and audit name the action."""


def _plan_scale_statefulset(target: ResourceRef, params: ScaleStatefulSetParams) -> PlanDraft:
    draft = _scale_draft(target, params)
    draft.warnings.append(
        "scaling a StatefulSet down removes the highest ordinals; their PersistentVolumeClaims are kept"
    )
    return draft


SPEC = ActionSpec(
    name="scale_statefulset",
    harmful_when=(K.TARGET_HEALTHY, *SCHEDULING_BLOCKED, *OWNED_ELSEWHERE),
    summary=("Set the replica count of a StatefulSet (0..500); ordered, and storage is kept on scale-down."),
    params=ScaleStatefulSetParams,
    target_kinds=("StatefulSet",),
    risk=Risk.HIGH,
    sensitive=True,
    preconditions=(
        "no HorizontalPodAutoscaler targets the StatefulSet",
        "the application tolerates membership changes (quorum-based systems: keep an odd, sufficient count)",
        "storage for new ordinals can be provisioned",
    ),
    when_to_use=("Capacity problems of a stateful service whose operator documents manual scaling as safe."),
    when_not_to_use=(
        "Do not scale quorum systems (etcd, ZooKeeper, Kafka controllers) below quorum or without their "
        "own membership procedure. Do not use when an operator (CRD) owns the StatefulSet: change the "
        "custom resource instead. " + GITOPS_GUARD
    ),
    verification=(
        "status.readyReplicas equals the requested replicas and the application reports healthy membership."
    ),
    inverse="scale_statefulset",
    inverse_note="scale_statefulset with replicas=<spec.replicas recorded before the change>",
    rbac=(
        *_workload_rbac(("statefulsets",), ("get", "list", "watch")),
        RbacRule("apps", "statefulsets/scale", ("get", "patch")),
        _HPA_LIST,
    ),
    planner=_plan_scale_statefulset,
    family=Family.WORKLOAD,
    operation=Scale("scale_statefulset"),
)
