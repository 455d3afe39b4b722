"""evict_pod: Evict one pod through the Eviction API, which honours PodDisruptionBudgets."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.catalog.pods import RestartPodParams
from kubernaut.execution.operations.pods import ReplacePod
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


OPERATION = ReplacePod("evict_pod", "evict", removed="evicted_uid")


SPEC = declared(__name__, params=EvictPodParams, planner=_plan_evict, operation=OPERATION)
