"""Actions on resource envelopes: container limits, autoscaler bounds, disruption budgets."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field, model_validator

from kubernaut.execution.catalog.grammar import DnsLabel, Quantity
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.catalog.quantity import parse_quantity
from kubernaut.models.resource import ResourceRef

if TYPE_CHECKING:
    pass


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






def limits_planner(resource: str) -> Callable[[ResourceRef, _LimitParams], PlanDraft]:
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
