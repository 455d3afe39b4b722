"""evict_pod: Evict one pod through the Eviction API, which honours PodDisruptionBudgets."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.catalog.pods import RestartPodParams
from kubernaut.execution.operations.base import Context, Operation, Prepared, Verification, Write
from kubernaut.execution.operations.pods import _prepare_pod, _verify_replaced
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


SPEC = declared(__name__, params=EvictPodParams, planner=_plan_evict, operation=EvictPod())
