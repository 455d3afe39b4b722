"""update_hpa: Change the min/max replicas of a HorizontalPodAutoscaler (found from the workload if needed)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, model_validator

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.catalog.workloads import MAX_REPLICAS
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import meta, with_rv
from kubernaut.models.resource import ResourceRef


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


class UpdateHpa(Operation):
    name = "update_hpa"

    async def _find(self, ctx: Context, target: ResourceRef) -> dict[str, Any]:
        if target.kind == "HorizontalPodAutoscaler":
            return await must_get(ctx, target)
        await must_get(ctx, target)
        found = [h for h in await ctx.kube.list("HorizontalPodAutoscaler", target.namespace)
                 if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == target.kind
                 and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == target.name]
        if not found:
            raise Refused(f"no HorizontalPodAutoscaler targets {target.kind} {target.namespace}/{target.name}")
        if len(found) > 1:
            raise Refused(f"{len(found)} HorizontalPodAutoscalers target {target.kind} {target.name} "
                          f"({', '.join(meta(h)['name'] for h in found)}): name one as the target")
        return found[0]

    async def prepare(self, ctx: Context, target: ResourceRef, params: UpdateHpaParams,
                      undo: dict[str, Any] | None) -> Prepared:
        hpa = await self._find(ctx, target)
        spec = hpa.get("spec") or {}
        cur_min, cur_max = int(spec.get("minReplicas") or 1), int(spec["maxReplicas"])
        if undo is not None:
            new_min, new_max = int(undo["min_replicas"]), int(undo["max_replicas"])
        else:
            new_min = params.min_replicas if params.min_replicas is not None else cur_min
            if params.max_replicas is not None:
                new_max = params.max_replicas
            elif params.max_replicas_factor is not None:
                new_max = min(math.ceil(cur_max * params.max_replicas_factor), MAX_REPLICAS)
            else:
                new_max = cur_max
        if new_min > new_max:
            raise Refused(f"minReplicas {new_min} would exceed maxReplicas {new_max}")
        if (new_min, new_max) == (cur_min, cur_max):
            raise Refused(f"HPA {meta(hpa)['name']} already has minReplicas={cur_min}, maxReplicas={cur_max}")
        name = meta(hpa)["name"]
        body = with_rv(hpa, {"spec": {"minReplicas": new_min, "maxReplicas": new_max}})
        write = Write("patch", "HorizontalPodAutoscaler", name, target.namespace, body, before=hpa)
        return Prepared([write], {"hpa": name, "min_replicas": cur_min, "max_replicas": cur_max},
                        {"hpa": name, "min_replicas": new_min, "max_replicas": new_max})

    def inverse(self, target: ResourceRef, params: UpdateHpaParams, record: dict[str, Any]) -> dict[str, Any] | None:
        hpa = ResourceRef(kind="HorizontalPodAutoscaler", name=record["hpa"], namespace=target.namespace)
        return self.inverse_request(self.name, hpa,
                               {"min_replicas": record["min_replicas"], "max_replicas": record["max_replicas"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: UpdateHpaParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        hpa = await ctx.kube.get("HorizontalPodAutoscaler", after["hpa"], target.namespace)
        spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
        got = (int(spec.get("minReplicas") or 1), int(spec.get("maxReplicas") or 0))
        want = (after["min_replicas"], after["max_replicas"])
        if got != want:
            return Verification(False, [f"HPA bounds are {got}, not {want}: changed since"])
        checks = [f"HPA {after['hpa']} minReplicas={got[0]} maxReplicas={got[1]}"]
        desired = status.get("desiredReplicas")
        if desired is not None:
            checks.append(f"desiredReplicas={desired}")
        return Verification(True, checks)


SPEC = declared(__name__, params=UpdateHpaParams, planner=_plan_hpa, operation=UpdateHpa())
