"""evict_pod: Evict one pod through the Eviction API, which honours PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.plan import PlanDraft, Risk, ref
from kubernaut.execution.catalog.pods import _POD_READ, POD_KINDS, RestartPodParams
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.operations.base import Context, Operation, Prepared, Verification, Write
from kubernaut.execution.operations.pods import _prepare_pod, _verify_replaced
from kubernaut.models.finding import RESTART_FUTILE
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef


class EvictPodParams(RestartPodParams):
    """Same knobs as restart_pod; the eviction API takes the grace period in its DeleteOptions."""


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


class EvictPod(Operation):
    name = "evict_pod"

    async def prepare(self, ctx: Context, target: ResourceRef, params: EvictPodParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pod, record = await _prepare_pod(ctx, target, need_controller=True, action=self.name)
        write = Write("evict", "Pod", target.name, target.namespace, before=pod, uid=record["uid"],
                      grace_period_seconds=params.grace_period_seconds)
        return Prepared([write], record, {"evicted_uid": record["uid"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: EvictPodParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        return await _verify_replaced(ctx, target, record)


SPEC = ActionSpec(
    name="evict_pod",
    helps_when=(K.PROBE_FAILING,),
    harmful_when=(*RESTART_FUTILE,),
    summary="Evict one pod through the Eviction API, which honours PodDisruptionBudgets.",
    params=EvictPodParams,
    target_kinds=POD_KINDS,
    risk=Risk.LOW,
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
    inverse_note="none: an evicted pod cannot be brought back; the controller recreates it",
    rbac=(_POD_READ, RbacRule("", "pods/eviction", ("create",))),
    planner=_plan_evict,
    family=Family.POD,
    operation=EvictPod(),
)
