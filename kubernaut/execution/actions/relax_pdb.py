"""relax_pdb: Loosen a PodDisruptionBudget (maxUnavailable or minAvailable) so evictions and drains can proceed."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.grammar import IntOrPercent
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import meta, with_rv
from kubernaut.models.resource import ResourceRef


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


def _disruptions(spec: dict[str, Any], expected: int, healthy: int) -> int:
    """Disruptions a PDB spec allows, as the disruption controller computes them."""
    if spec.get("maxUnavailable") is not None:
        value = spec["maxUnavailable"]
        unavailable = (-(-int(value[:-1]) * expected // 100) if isinstance(value, str) and value.endswith("%")
                       else int(value))
        desired = max(0, expected - unavailable)
    elif spec.get("minAvailable") is not None:
        value = spec["minAvailable"]
        desired = (-(-int(value[:-1]) * expected // 100) if isinstance(value, str) and value.endswith("%")
                   else int(value))
    else:
        desired = 0
    return max(0, healthy - desired)


class RelaxPdb(Operation):
    name = "relax_pdb"

    async def prepare(self, ctx: Context, target: ResourceRef, params: RelaxPdbParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pdb = await must_get(ctx, target)
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        record = {"min_available": spec.get("minAvailable"), "max_unavailable": spec.get("maxUnavailable"),
                  "disruptions_allowed": status.get("disruptionsAllowed")}
        if undo is not None:
            new = {"minAvailable": undo.get("min_available"), "maxUnavailable": undo.get("max_unavailable")}
        else:
            new = {"minAvailable": params.min_available, "maxUnavailable": params.max_unavailable}
            allowed = int(status.get("disruptionsAllowed") or 0)
            if allowed > 0:
                raise Refused(f"the budget already allows {allowed} disruption(s): it is not what blocks; nothing to "
                              "relax")
            expected, healthy = int(status.get("expectedPods") or 0), int(status.get("currentHealthy") or 0)
            after = _disruptions(new, expected, healthy)
            if after <= allowed:
                raise Refused(f"the new value would still allow {after} disruption(s) ({healthy} healthy of "
                              f"{expected} expected pods): it does not relax the budget")
        if new == {"minAvailable": spec.get("minAvailable"), "maxUnavailable": spec.get("maxUnavailable")}:
            raise Refused("the budget already has these values")
        write = Write("patch", "PodDisruptionBudget", target.name, target.namespace, with_rv(pdb, {"spec": new}),
                      before=pdb)
        return Prepared([write], record, {"min_available": new["minAvailable"],
                                          "max_unavailable": new["maxUnavailable"], "restore": undo is not None})

    def inverse(self, target: ResourceRef, params: RelaxPdbParams, record: dict[str, Any]) -> dict[str, Any] | None:
        if record.get("max_unavailable") is not None:
            parameters = {"max_unavailable": record["max_unavailable"]}
        elif record.get("min_available") is not None:
            parameters = {"min_available": record["min_available"]}
        else:
            return None
        return self.inverse_request(self.name, target, parameters)

    async def verify(self, ctx: Context, target: ResourceRef, params: RelaxPdbParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        pdb = await must_get(ctx, target)
        spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
        got = {"min_available": spec.get("minAvailable"), "max_unavailable": spec.get("maxUnavailable")}
        if got != {k: after.get(k) for k in got}:
            return Verification(False, [f"the budget is {got}, not {after}: changed since"])
        if (status.get("observedGeneration") or 0) < (meta(pdb).get("generation") or 0):
            return Verification(None, ["the disruption controller has not observed the change yet"])
        allowed = int(status.get("disruptionsAllowed") or 0)
        checks = [f"spec {got}", f"status.disruptionsAllowed={allowed}"]
        if after.get("restore"):  # restoring a recorded (tighter) budget: the spec is what counts
            return Verification(True, checks)
        if record.get("disruptions_allowed") is not None and allowed <= int(record["disruptions_allowed"]):
            return Verification(None if allowed == 0 else False, checks)
        return Verification(True, checks)


SPEC = declared(__name__, params=RelaxPdbParams, planner=_plan_pdb, operation=RelaxPdb())
