"""Resource envelopes: container limits, HPA bounds, PodDisruptionBudgets."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, Decimal
from typing import Any

from kubernaut.execution.catalog import (
    IncreaseCpuLimitsParams,
    IncreaseMemoryLimitsParams,
    RelaxPdbParams,
    UpdateHpaParams,
    parse_quantity,
)
from kubernaut.execution.catalog.workloads import MAX_REPLICAS
from kubernaut.execution.operations.base import (
    Context,
    Operation,
    Prepared,
    Refused,
    Verification,
    Write,
    meta,
    must_get,
    rollout_state,
    with_rv,
)
from kubernaut.models.resource import ResourceRef

LimitParams = IncreaseMemoryLimitsParams | IncreaseCpuLimitsParams


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


def format_quantity(value: Decimal, resource: str) -> str:
    """Canonical, rounded up: Mi for memory (never a fraction of a byte), millicores for CPU."""
    if resource == "memory":
        return f"{int((value / Decimal(2**20)).to_integral_value(ROUND_CEILING))}Mi"
    return f"{int((value * 1000).to_integral_value(ROUND_CEILING))}m"


def _replicas(obj: dict[str, Any]) -> int:
    if obj.get("kind") == "DaemonSet":
        return int((obj.get("status") or {}).get("desiredNumberScheduled") or 0)
    return int((obj.get("spec") or {}).get("replicas", 1) or 0)


def _surge(obj: dict[str, Any]) -> int:
    """Extra pods a rollout creates before removing old ones (only Deployments surge)."""
    if obj.get("kind") != "Deployment":
        return 0
    strategy = (obj.get("spec") or {}).get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    replicas = _replicas(obj)
    if isinstance(surge, str) and surge.endswith("%"):
        return -(-int(surge[:-1]) * replicas // 100)
    return int(surge)


class IncreaseLimits(Operation):
    def __init__(self, resource: str) -> None:
        self.resource = resource
        self.name = f"increase_{resource}_limits"  # type: ignore[misc]

    async def prepare(self, ctx: Context, target: ResourceRef, params: LimitParams,
                      undo: dict[str, Any] | None) -> Prepared:
        res = self.resource
        obj = await must_get(ctx, target)
        containers = _containers(obj)
        name = params.container
        if name is None:
            if len(containers) != 1:
                raise Refused(f"the pod template has {len(containers)} containers "
                              f"({', '.join(c.get('name', '?') for c in containers)}): name one with `container`")
            name = containers[0]["name"]
        container = next((c for c in containers if c.get("name") == name), None)
        if container is None:
            raise Refused(f"the pod template has no container {name!r}")
        resources = container.get("resources") or {}
        old_limit = (resources.get("limits") or {}).get(res)
        request = (resources.get("requests") or {}).get(res)

        if undo is not None:
            if undo.get("container") != name:
                raise Refused(f"the recorded change was on container {undo.get('container')!r}, not {name!r}")
            new_limit: str | None = undo.get("limit")  # None: there was no limit, remove ours
            if request is not None and new_limit is not None and parse_quantity(request) > parse_quantity(new_limit):
                raise Refused(f"the request {request} is above the limit {new_limit} to restore")
        else:
            new_limit = self._raised(params, old_limit, request)
        if new_limit == old_limit:
            raise Refused(f"limits.{res} of {name} is already {old_limit}: nothing to change")
        await self._check_quota(ctx, target, obj, old_limit, new_limit)

        body = with_rv(obj, {"spec": {"template": {"spec": {"containers": [
            {"name": name, "resources": {"limits": {res: new_limit}}}]}}}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "strategic", before=obj)
        record = {"container": name, "limit": old_limit, "request": request, "planned_limit": new_limit}
        return Prepared([write], record, {"container": name, "limit": new_limit})

    def _raised(self, params: LimitParams, old_limit: str | None, request: str | None) -> str:
        res = self.resource
        cap = parse_quantity(params.max_limit)
        if params.new_limit is not None:
            value = parse_quantity(params.new_limit)
            text = params.new_limit
        else:
            base = old_limit or request
            if base is None:
                raise Refused(f"the container has neither a {res} limit nor a request to multiply: give new_limit")
            value = min(parse_quantity(base) * Decimal(str(params.factor)), cap)
            text = format_quantity(value, res)
            value = parse_quantity(text)
        if old_limit is not None:
            current = parse_quantity(old_limit)
            if current >= cap:
                raise Refused(f"limits.{res} is already {old_limit}, at or above max_limit {params.max_limit}")
            if value <= current:
                raise Refused(f"{text} would not raise limits.{res} (currently {old_limit}); lowering a limit is "
                              "only done as the inverse of a recorded change")
        if request is not None and value < parse_quantity(request):
            raise Refused(f"{text} is below the container's request {request}; the API server would reject it")
        return text

    async def _check_quota(self, ctx: Context, target: ResourceRef, obj: dict[str, Any], old: str | None,
                           new: str | None) -> None:
        res = self.resource
        if new is None:
            return  # removing a limit never exceeds a quota on limits
        new_v = parse_quantity(new)
        for lr in await ctx.kube.list("LimitRange", target.namespace):
            for item in (lr.get("spec") or {}).get("limits") or []:
                maximum = (item.get("max") or {}).get(res)
                if item.get("type") == "Container" and maximum and new_v > parse_quantity(maximum):
                    raise Refused(f"LimitRange {meta(lr)['name']} caps container {res} at {maximum}; {new} would be "
                                  "rejected")
        # The quota must hold at the peak of the rollout too: a Deployment surges new pods (new limit)
        # before old ones go, so a raise that fits in the end can still leave the rollout stuck.
        delta = max((new_v - (parse_quantity(old) if old else Decimal(0))) * _replicas(obj),
                    new_v * _surge(obj))
        if delta <= 0:
            return
        for quota in await ctx.kube.list("ResourceQuota", target.namespace):
            key = f"limits.{res}"
            hard = ((quota.get("spec") or {}).get("hard") or {}).get(key)
            if not hard:
                continue
            used = ((quota.get("status") or {}).get("used") or {}).get(key, "0")
            if parse_quantity(used) + delta > parse_quantity(hard):
                raise Refused(f"ResourceQuota {meta(quota)['name']}: {key} used {used} of {hard}; raising the limit "
                              f"to {new} on {_replicas(obj)} replica(s) needs {format_quantity(delta, res)} more "
                              "during the rollout; ask for a quota change (notify_only)")

    def inverse(self, target: ResourceRef, params: LimitParams, record: dict[str, Any]) -> dict[str, Any] | None:
        # new_limit=<previous>; with no previous limit the recorded before-state (no limit) is what
        # the executor restores, and new_limit just carries the value being undone.
        value = record.get("limit") or record.get("planned_limit")
        if value is None:
            return None
        ceiling = parse_quantity(type(params).model_fields["max_limit"].default)
        max_limit = value if parse_quantity(value) > ceiling else type(params).model_fields["max_limit"].default
        return {"action": self.name, "target": target.model_dump(),
                "parameters": {"container": record["container"], "new_limit": value, "max_limit": max_limit}}

    async def verify(self, ctx: Context, target: ResourceRef, params: LimitParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        container = next((c for c in _containers(obj) if c.get("name") == after["container"]), None)
        if container is None:
            return Verification(False, [f"container {after['container']} is gone from the template"])
        limit = ((container.get("resources") or {}).get("limits") or {}).get(self.resource)
        want = after.get("limit")
        same = (limit is None and want is None) or (
            limit is not None and want is not None and parse_quantity(limit) == parse_quantity(want))
        if not same:
            return Verification(False, [f"limits.{self.resource} of {after['container']} is {limit}, not {want}"])
        done, text = rollout_state(obj)
        return Verification(done, [f"limits.{self.resource} of {after['container']} is {limit}", text])


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
        return {"action": self.name, "target": hpa.model_dump(),
                "parameters": {"min_replicas": record["min_replicas"], "max_replicas": record["max_replicas"]}}

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
        return {"action": self.name, "target": target.model_dump(), "parameters": parameters}

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


OPERATIONS = (IncreaseLimits("memory"), IncreaseLimits("cpu"), UpdateHpa(), RelaxPdb())
