"""Resource envelopes: container limits, HPA bounds, PodDisruptionBudgets."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from kubernaut.execution.catalog import IncreaseCpuLimitsParams, IncreaseMemoryLimitsParams, parse_quantity
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import meta, rollout_state, with_rv
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
        return self.inverse_request(self.name, target,
                               {"container": record["container"], "new_limit": value, "max_limit": max_limit})

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








