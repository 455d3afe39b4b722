"""Actions on single Pods: the smallest blast radius, so usually the first thing to try."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.base import ActionParams, ActionSpec, PlanDraft, RbacRule, Risk, ref
from kubernaut.models.finding import RESTART_FUTILE
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef

POD_KINDS = ("Pod",)
GRACE_DESCRIPTION = "Seconds the containers get to shut down; omitted = the pod's terminationGracePeriodSeconds."


class RestartPodParams(ActionParams):
    """grace_period_seconds is bounded so a request cannot hold a lock on the target for hours."""

    grace_period_seconds: int | None = Field(default=None, ge=0, le=3600, description=GRACE_DESCRIPTION)


class DeletePodParams(RestartPodParams):
    """Same knobs as restart_pod; a separate class so the schema and audit name the action."""


class EvictPodParams(RestartPodParams):
    """Same knobs as restart_pod; the eviction API takes the grace period in its DeleteOptions."""


def _grace(params: RestartPodParams) -> str:
    if params.grace_period_seconds is None:
        return ""
    return f" gracePeriodSeconds={params.grace_period_seconds}"


def _plan_restart(target: ResourceRef, params: RestartPodParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record uid and ownerReferences; refuse unless a controller owns the pod)",
            f"DELETE {ref(target)}{_grace(params)} preconditions.uid=<recorded uid>",
            f"WATCH v1 Pod in namespace {target.namespace} until the controller's replacement is Ready",
        ]
    )


def _plan_delete(target: ResourceRef, params: DeletePodParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record uid, ownerReferences and manifest)",
            f"DELETE {ref(target)}{_grace(params)} preconditions.uid=<recorded uid>",
        ],
        warnings=["a pod without a controller is not recreated: deleting it is permanent"],
    )


def _plan_evict(target: ResourceRef, params: EvictPodParams) -> PlanDraft:
    options = (
        f" deleteOptions.gracePeriodSeconds={params.grace_period_seconds}"
        if params.grace_period_seconds is not None
        else ""
    )
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record uid and ownerReferences)",
            f"CREATE policy/v1 Eviction {target.namespace}/{target.name} (POST v1 pods/eviction){options}; "
            "HTTP 429 means a PodDisruptionBudget forbids it now and the action fails without retrying",
        ]
    )


_POD_READ = RbacRule("", "pods", ("get", "list", "watch"))

SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="restart_pod",
        helps_when=(K.PROBE_FAILING,),
        harmful_when=(*RESTART_FUTILE,),
        summary="Delete one controller-managed pod so its controller replaces it with a fresh one.",
        params=RestartPodParams,
        target_kinds=POD_KINDS,
        risk=Risk.LOW,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the pod exists and is owned by a controller (ReplicaSet, StatefulSet, DaemonSet, Job)",
            "the workload has other ready replicas, or a short interruption is acceptable",
        ),
        when_to_use=(
            "One pod of a replicated workload is stuck (deadlocked, leaking, wedged connection pool, "
            "CrashLoopBackOff after a transient dependency outage) while its siblings are healthy."
        ),
        when_not_to_use=(
            "Do not use on pods without a controller (use delete_pod knowingly, or notify_only). Do not use "
            "when every replica fails the same way: the cause is in the spec, config or a dependency, and a "
            "restart only resets the clock. Do not use for OOMKilled containers: raise memory with "
            "increase_memory_limits instead."
        ),
        verification=("A new pod with a different uid is Ready, and its restart count stays at 0 through the window."),
        inverse=None,
        inverse_note=("none: a restarted pod cannot be un-restarted; the controller recreates it from the same spec"),
        rbac=(_POD_READ, RbacRule("", "pods", ("delete",))),
        planner=_plan_restart,
    ),
    ActionSpec(
        name="delete_pod",
        helps_when=(K.PROBE_FAILING,),
        harmful_when=(*RESTART_FUTILE,),
        summary=("Delete one pod, controller-managed or not (e.g. a pod stuck Terminating or a failed bare pod)."),
        params=DeletePodParams,
        target_kinds=POD_KINDS,
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=("the pod exists", "if it has no controller, losing it permanently is acceptable"),
        when_to_use=(
            "Clearing a Failed/Evicted/Unknown pod that nothing will clean up, or a pod whose node is gone; "
            "prefer restart_pod when a controller owns the pod."
        ),
        when_not_to_use=(
            "Do not use to 'restart' a bare pod you still need: it is not recreated. Do not use when a "
            "PodDisruptionBudget should be respected (use evict_pod)."
        ),
        verification="The pod no longer exists (or a replacement is Ready when a controller owns it).",
        inverse=None,
        inverse_note="none: a deleted pod is gone; the executor keeps the recorded manifest for humans",
        rbac=(_POD_READ, RbacRule("", "pods", ("delete",))),
        planner=_plan_delete,
    ),
    ActionSpec(
        name="evict_pod",
        helps_when=(K.PROBE_FAILING,),
        harmful_when=(*RESTART_FUTILE,),
        summary="Evict one pod through the Eviction API, which honours PodDisruptionBudgets.",
        params=EvictPodParams,
        target_kinds=POD_KINDS,
        risk=Risk.LOW,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the pod exists and is owned by a controller",
            "a PodDisruptionBudget covering the pod currently allows a disruption (else the API answers 429)",
        ),
        when_to_use=(
            "Moving a pod off a bad node or out of a bad state while keeping the workload's availability "
            "guarantees; the safe alternative to restart_pod when a PDB protects the workload."
        ),
        when_not_to_use=(
            "Do not use to force through a PDB that blocks evictions (fix availability first or, with "
            "approval, relax_pdb). Do not use for OOMKilled containers: raise memory instead."
        ),
        verification=(
            "The pod is gone and the controller's replacement is Ready, on another node if the node was the issue."
        ),
        inverse=None,
        inverse_note="none: an evicted pod cannot be brought back; the controller recreates it",
        rbac=(_POD_READ, RbacRule("", "pods/eviction", ("create",))),
        planner=_plan_evict,
    ),
)
