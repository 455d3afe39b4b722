"""Actions on workload controllers (Deployment, StatefulSet, DaemonSet): rollouts, scale, images."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, Risk, ref
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.models.resource import ResourceRef

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
MAX_REPLICAS = 500

GITOPS_GUARD = (
    "Do not patch GitOps-managed workloads (Argo CD / Flux annotations or labels): the controller reverts a "
    "direct patch within minutes, so fix it in git (notify_only with the proposed change)."
)




class ScaleParams(ActionParams):
    """Replicas are bounded so a hallucinated 10000 cannot exhaust the cluster; 0 is allowed
    because stopping a runaway consumer is a legitimate remediation, but the plan flags it."""

    replicas: int = Field(
        ge=0, le=MAX_REPLICAS, description="Desired replicas; 0 stops the workload entirely (an outage)."
    )












def _scale_draft(target: ResourceRef, params: ScaleParams) -> PlanDraft:
    warnings: list[str] = []
    risk = None
    if params.replicas == 0:
        warnings.append(f"replicas=0 stops every pod of {target.kind} {target.namespace}/{target.name}: an outage")
        risk = Risk.HIGH
    return PlanDraft(
        steps=[
            f"GET {ref(target)}/scale (record spec.replicas for the inverse)",
            f"LIST autoscaling/v2 HorizontalPodAutoscaler in namespace {target.namespace} (refuse when one "
            "targets this workload: it would undo the change)",
            f"PATCH {ref(target)}/scale spec.replicas={params.replicas}",
            f"WATCH {ref(target)} until status.readyReplicas == {params.replicas}",
        ],
        warnings=warnings,
        risk=risk,
    )












def _workload_rbac(resources: tuple[str, ...], verbs: tuple[str, ...]) -> tuple[RbacRule, ...]:
    return tuple(RbacRule("apps", resource, verbs) for resource in resources)


_WORKLOAD_RESOURCES = ("deployments", "statefulsets", "daemonsets")
_HPA_LIST = RbacRule("autoscaling", "horizontalpodautoscalers", ("get", "list"))

