"""scale_deployment: Set the replica count of a Deployment (0..500; 0 stops it)."""

from __future__ import annotations

from kubernaut.execution.catalog.plan import Risk
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.catalog.workloads import _HPA_LIST, GITOPS_GUARD, ScaleParams, _scale_draft, _workload_rbac
from kubernaut.execution.operations.workloads import Scale
from kubernaut.models.finding import OWNED_ELSEWHERE, SCHEDULING_BLOCKED
from kubernaut.models.finding import FindingKind as K


class ScaleDeploymentParams(ScaleParams):
    """Distinct class so the schema and audit name the action."""


SPEC = ActionSpec(
    name="scale_deployment",
    harmful_when=(K.TARGET_HEALTHY, *SCHEDULING_BLOCKED, *OWNED_ELSEWHERE),
    summary="Set the replica count of a Deployment (0..500; 0 stops it).",
    params=ScaleDeploymentParams,
    target_kinds=("Deployment",),
    risk=Risk.MEDIUM,
    preconditions=(
        "no HorizontalPodAutoscaler targets the Deployment (use update_hpa instead)",
        "the namespace ResourceQuota and cluster capacity allow the extra pods",
    ),
    when_to_use=(
        "Saturation (CPU, queue depth, latency) with healthy pods and no autoscaler; or scaling a "
        "runaway consumer down to protect a dependency."
    ),
    when_not_to_use=(
        "Do not use when an HPA manages the Deployment (it reverts the change; use update_hpa). Do not "
        "scale up crashing or OOMKilled pods: more copies crash the same way. Scaling to 0 is an outage "
        "and needs explicit intent. " + GITOPS_GUARD
    ),
    verification="status.readyReplicas equals the requested replicas and the saturation metric improves.",
    inverse="scale_deployment",
    inverse_note="scale_deployment with replicas=<spec.replicas recorded before the change>",
    rbac=(
        *_workload_rbac(("deployments",), ("get", "list", "watch")),
        RbacRule("apps", "deployments/scale", ("get", "patch")),
        _HPA_LIST,
    ),
    planner=_scale_draft,
    family=Family.WORKLOAD,
    operation=Scale("scale_deployment"),
)
