"""Actions on resource envelopes: container limits, autoscaler bounds, disruption budgets."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import ClassVar

from pydantic import Field, model_validator

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    DnsLabel,
    IntOrPercent,
    PlanDraft,
    Quantity,
    RbacRule,
    Risk,
    parse_quantity,
    ref,
)
from kubernaut.execution.catalog.workloads import GITOPS_GUARD, MAX_REPLICAS, WORKLOAD_KINDS
from kubernaut.models.finding import OWNED_ELSEWHERE, SCHEDULING_BLOCKED
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef

# Hard ceilings on the caps themselves: max_limit is a parameter (the LLM may tighten it), but it
# must not be usable to lift the cap to absurd values.
MEMORY_CEILING = "256Gi"
CPU_CEILING = "64"
# Below this a memory quantity is almost certainly a unit mistake ("512m" is 0.512 bytes, not MiB).
MEMORY_FLOOR = "4Mi"

QUOTA_GUARD = (
    "Do not raise limits when a ResourceQuota in the namespace forbids it (the patch is rejected or new "
    "pods stay Pending): notify_only, asking for a quota change."
)
FACTOR_DESCRIPTION = (
    "Multiply the current limit (or, when the container has none, its request) by this; the result is "
    "capped at max_limit. Ignored unless new_limit is omitted."
)
DEFAULT_FACTOR = 1.5
CONTAINER_DESCRIPTION = (
    "Container to change; omitted = the container named by the alert, or the only container. The executor "
    "refuses when that is ambiguous."
)


class _LimitParams(ActionParams):
    """Shared shape of the two limit actions: a relative factor by default (the LLM rarely knows
    the current limit), an absolute value when it does, and a cap either way."""

    container: DnsLabel | None = Field(default=None, description=CONTAINER_DESCRIPTION)
    factor: float = Field(default=DEFAULT_FACTOR, ge=1.1, le=4.0, description=FACTOR_DESCRIPTION)
    new_limit: Quantity | None = Field(default=None, description="Absolute new limit; excludes factor.")
    max_limit: Quantity = Field(description="Cap on the resulting limit.")

    # Per resource: the ceiling on max_limit, and the smallest plausible value.
    _ceiling: ClassVar[str] = "0"
    _floor: ClassVar[str] = "0"

    @model_validator(mode="after")
    def _bounds(self) -> _LimitParams:
        max_limit = self.max_limit
        # Compared by value, not by "was it set": validated parameters are dumped (default factor
        # included) and validated again by the executor, and that round trip must not fail.
        if self.new_limit is not None and self.factor != DEFAULT_FACTOR:
            raise ValueError("factor, new_limit: give either factor or new_limit, not both")
        cap = parse_quantity(max_limit)
        if cap > parse_quantity(self._ceiling):
            raise ValueError(f"max_limit: {max_limit} exceeds the ceiling {self._ceiling}")
        floor = parse_quantity(self._floor)
        if cap < floor:
            raise ValueError(f"max_limit: {max_limit} is below {self._floor}; check the unit")
        if self.new_limit is not None:
            value = parse_quantity(self.new_limit)
            if value < floor or value == Decimal(0):
                raise ValueError(f"new_limit: {self.new_limit} is implausibly small; check the unit")
            if value > cap:
                raise ValueError(f"new_limit: {self.new_limit} exceeds max_limit {max_limit}")
        return self


class IncreaseMemoryLimitsParams(_LimitParams):
    """Memory is incompressible: a too-low limit kills the process, so this is the OOMKilled fix."""

    max_limit: Quantity = Field(default="16Gi", description=f"Cap on the resulting limit; at most {MEMORY_CEILING}.")
    _ceiling: ClassVar[str] = MEMORY_CEILING
    _floor: ClassVar[str] = MEMORY_FLOOR


class IncreaseCpuLimitsParams(_LimitParams):
    """CPU is compressible: a too-low limit throttles instead of killing, hence a separate action."""

    max_limit: Quantity = Field(default="8", description=f"Cap on the resulting limit in cores; at most {CPU_CEILING}.")
    _ceiling: ClassVar[str] = CPU_CEILING
    _floor: ClassVar[str] = "1m"


class UpdateHpaParams(ActionParams):
    """Bounds optional so one can be moved without knowing the other; the executor checks a single
    bound against the live value of the other before patching. max_replicas_factor exists because
    "the HPA is maxed out" rarely comes with the current ceiling, and a guessed absolute number
    could just as well lower it."""

    min_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS, description="New spec.minReplicas.")
    max_replicas: int | None = Field(default=None, ge=1, le=MAX_REPLICAS, description="New spec.maxReplicas.")
    max_replicas_factor: float | None = Field(
        default=None,
        ge=1.1,
        le=4.0,
        description=(
            f"Raise spec.maxReplicas to ceil(current x factor), at most {MAX_REPLICAS}; excludes max_replicas."
        ),
    )

    @model_validator(mode="after")
    def _order(self) -> UpdateHpaParams:
        if self.min_replicas is None and self.max_replicas is None and self.max_replicas_factor is None:
            raise ValueError("min_replicas, max_replicas, max_replicas_factor: give at least one of them")
        if self.max_replicas is not None and self.max_replicas_factor is not None:
            raise ValueError("max_replicas, max_replicas_factor: give either of them, not both")
        if self.min_replicas is not None and self.max_replicas is not None and self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) must be less than or equal to max_replicas ({self.max_replicas})"
            )
        return self


class RelaxPdbParams(ActionParams):
    """Exactly one field, because a PodDisruptionBudget may set only one of them; values that
    would forbid every eviction are refused since they tighten rather than relax."""

    max_unavailable: IntOrPercent | None = Field(
        default=None, description="New spec.maxUnavailable (count or 'N%'); excludes min_available."
    )
    min_available: IntOrPercent | None = Field(
        default=None, description="New spec.minAvailable (count or 'N%'); excludes max_unavailable."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RelaxPdbParams:
        if (self.max_unavailable is None) == (self.min_available is None):
            raise ValueError("max_unavailable, min_available: give exactly one of them")
        if self.max_unavailable in (0, "0%"):
            raise ValueError("max_unavailable: 0 forbids every eviction; that tightens the budget")
        if self.min_available == "100%":
            raise ValueError("min_available: 100% forbids every eviction; that tightens the budget")
        return self


def _limits_planner(resource: str) -> Callable[[ResourceRef, _LimitParams], PlanDraft]:
    def plan(target: ResourceRef, params: _LimitParams) -> PlanDraft:
        container = params.container or "<the alert's container, or the only container>"
        if params.new_limit is not None:
            value = f"{params.new_limit}"
        else:
            value = f"min(<current limit or request> x {params.factor:g}, {params.max_limit})"
        return PlanDraft(
            steps=[
                f"GET {ref(target)} (record spec.template.spec.containers[name={container}].resources for "
                "the inverse; refuse when the container is ambiguous)",
                f"LIST v1 ResourceQuota and LimitRange in namespace {target.namespace} (refuse when "
                f"limits.{resource} would exceed the quota or the LimitRange max)",
                f"PATCH {ref(target)} "
                f"spec.template.spec.containers[name={container}].resources.limits.{resource}={value} "
                "(strategic merge; requests unchanged, never above the new limit)",
                f"WATCH {ref(target)} until the rollout completes and the new pods are Ready",
            ]
        )

    return plan


def _plan_hpa(target: ResourceRef, params: UpdateHpaParams) -> list[str]:
    if target.kind == "HorizontalPodAutoscaler":
        find = f"GET {ref(target)} (record spec.minReplicas/maxReplicas for the inverse)"
        hpa = ref(target)
    else:
        find = (
            f"LIST autoscaling/v2 HorizontalPodAutoscaler in namespace {target.namespace}; pick the one "
            f"whose scaleTargetRef is {target.kind}/{target.name} (refuse when none); record its bounds for "
            "the inverse"
        )
        hpa = f"autoscaling/v2 HorizontalPodAutoscaler {target.namespace}/<that HPA>"
    factor = params.max_replicas_factor
    changes = ", ".join(
        f"{field}={value}"
        for field, value in (
            ("spec.minReplicas", params.min_replicas),
            ("spec.maxReplicas", params.max_replicas),
            ("spec.maxReplicas", f"min(ceil(<current> x {factor:g}), {MAX_REPLICAS})" if factor else None),
        )
        if value is not None
    )
    return [find, f"PATCH {hpa} {changes} (refuse when min > max after the change)"]


def _plan_pdb(target: ResourceRef, params: RelaxPdbParams) -> list[str]:
    if params.max_unavailable is not None:
        change = f"spec.maxUnavailable={params.max_unavailable}, spec.minAvailable=null"
    else:
        change = f"spec.minAvailable={params.min_available}, spec.maxUnavailable=null"
    return [
        f"GET {ref(target)} (record spec.minAvailable/maxUnavailable for the inverse; refuse unless the new "
        "value allows more disruptions than the current one)",
        f"PATCH {ref(target)} {change} (JSON merge patch)",
    ]


_QUOTA_READ = (RbacRule("", "resourcequotas", ("get", "list")), RbacRule("", "limitranges", ("get", "list")))
_WORKLOAD_PATCH = tuple(
    RbacRule("apps", resource, ("get", "list", "watch", "patch"))
    for resource in ("deployments", "statefulsets", "daemonsets")
)


_LIMIT_EVIDENCE = {
    "memory": (K.OOM_KILLED, K.QUOTA_NO_ROOM_MEMORY),
    "cpu": (K.CPU_THROTTLED, K.QUOTA_NO_ROOM_CPU),
}


def _limits_spec(resource: str, params: type[_LimitParams], summary: str, when: str, when_not: str) -> ActionSpec:
    name = f"increase_{resource}_limits"
    helps, no_room = _LIMIT_EVIDENCE[resource]
    return ActionSpec(
        name=name,
        helps_when=(helps,),
        harmful_when=(no_room, K.INSUFFICIENT_RESOURCES, K.QUOTA_EXCEEDED, *OWNED_ELSEWHERE),
        summary=summary,
        params=params,
        target_kinds=WORKLOAD_KINDS,
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the container exists in the pod template",
            f"the namespace ResourceQuota and LimitRange allow the new {resource} limit",
            "nodes have allocatable capacity for the new pods",
        ),
        when_to_use=when,
        when_not_to_use=when_not + " " + QUOTA_GUARD + " " + GITOPS_GUARD,
        verification=(
            f"The new pods run with the raised limits.{resource} and stay Ready through the window "
            + ("without OOMKilled restarts." if resource == "memory" else "with CPU throttling down.")
        ),
        inverse=name,
        inverse_note=(
            f"{name} with container=<same>, new_limit=<limits.{resource} recorded before the change>; the "
            "executor accepts a lower new_limit only as the inverse of its own recorded change, and removes "
            "the limit again when there was none"
        ),
        rbac=(*_WORKLOAD_PATCH, *_QUOTA_READ),
        planner=_limits_planner(resource),
    )


SPECS: tuple[ActionSpec, ...] = (
    _limits_spec(
        "memory",
        IncreaseMemoryLimitsParams,
        "Raise the memory limit of a workload's container (by a factor, or to a given value, capped).",
        "Containers are OOMKilled (reason OOMKilled, exit code 137) or sit at their memory limit under "
        "normal load, after a traffic or data growth, and memory use is stable rather than leaking.",
        "Do not use for an unbounded leak (memory grows linearly until killed at any size): a higher limit "
        "only delays the crash; restart and notify instead. Do not use when the node, not the container, "
        "ran out of memory (node pressure evictions).",
    ),
    _limits_spec(
        "cpu",
        IncreaseCpuLimitsParams,
        "Raise the CPU limit of a workload's container (by a factor, or to a given value, capped).",
        "Sustained CPU throttling (container_cpu_cfs_throttled ratio high) correlates with latency or "
        "failing liveness probes.",
        "Do not use for OOMKilled containers (that is memory). Do not use when the node itself is CPU "
        "saturated: raising limits moves the contention elsewhere.",
    ),
    ActionSpec(
        name="update_hpa",
        helps_when=(K.HPA_AT_MAX,),
        harmful_when=(K.CRASH, K.OOM_KILLED, *SCHEDULING_BLOCKED, *OWNED_ELSEWHERE),
        summary=("Change the min/max replicas of a HorizontalPodAutoscaler (found from the workload if needed)."),
        params=UpdateHpaParams,
        target_kinds=("HorizontalPodAutoscaler", "Deployment", "StatefulSet"),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "an HPA targets the workload",
            "after the change minReplicas <= maxReplicas",
            "cluster capacity and ResourceQuota allow maxReplicas pods",
        ),
        when_to_use=(
            "The HPA is pinned at maxReplicas while the load metric stays above target, or minReplicas is "
            "too low to absorb known traffic bursts."
        ),
        when_not_to_use=(
            "Do not raise maxReplicas for crashing or OOMKilled pods: more replicas fail the same way. "
            "Do not raise it when a downstream dependency is the bottleneck. " + QUOTA_GUARD + " " + GITOPS_GUARD
        ),
        verification=(
            "The HPA shows the new bounds, desiredReplicas is within them, and the load metric returns to target."
        ),
        inverse="update_hpa",
        inverse_note="update_hpa with the min_replicas and max_replicas recorded before the change",
        rbac=(
            RbacRule("autoscaling", "horizontalpodautoscalers", ("get", "list", "patch")),
            # A workload target is read (scope, existence) before its HPA is looked up.
            RbacRule("apps", "deployments", ("get",)),
            RbacRule("apps", "statefulsets", ("get",)),
        ),
        planner=_plan_hpa,
    ),
    ActionSpec(
        name="relax_pdb",
        helps_when=(K.PDB_BLOCKS_EVICTION,),
        harmful_when=(*OWNED_ELSEWHERE,),
        summary=("Loosen a PodDisruptionBudget (maxUnavailable or minAvailable) so evictions and drains can proceed."),
        params=RelaxPdbParams,
        target_kinds=("PodDisruptionBudget",),
        risk=Risk.HIGH,
        mutates=True,
        sensitive=True,
        preconditions=(
            "the budget currently blocks a needed eviction (status.disruptionsAllowed == 0)",
            "the new value still keeps enough replicas for the service's availability",
        ),
        when_to_use=(
            "A drain or eviction is stuck because a PDB allows zero disruptions (e.g. minAvailable equals "
            "replicas, or maxUnavailable 0) and a node must be emptied."
        ),
        when_not_to_use=(
            "Do not relax a budget protecting a quorum system below its quorum. Do not use to make room for "
            "an ordinary restart: fix the workload's replica count instead. " + GITOPS_GUARD
        ),
        verification=(
            "status.disruptionsAllowed > 0 and the blocked eviction proceeds; restore the budget afterwards."
        ),
        inverse="relax_pdb",
        inverse_note=("relax_pdb with the minAvailable/maxUnavailable recorded before the change (whichever was set)"),
        rbac=(RbacRule("policy", "poddisruptionbudgets", ("get", "list", "patch")),),
        planner=_plan_pdb,
    ),
)

__all__ = [
    "CPU_CEILING",
    "MEMORY_CEILING",
    "SPECS",
    "IncreaseCpuLimitsParams",
    "IncreaseMemoryLimitsParams",
    "RelaxPdbParams",
    "UpdateHpaParams",
]
