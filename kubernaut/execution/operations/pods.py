"""restart_pod, delete_pod, evict_pod: one pod, by uid, so a same-named replacement is never hit."""

from __future__ import annotations

from typing import Any, Literal

from kubernaut.execution.catalog import RestartPodParams
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import controller_of, is_ready, meta
from kubernaut.models.resource import ResourceRef


async def _siblings(ctx: Context, namespace: str, owner_uid: str) -> list[dict[str, Any]]:
    pods = await ctx.kube.list("Pod", namespace)
    return [p for p in pods if any(o.get("uid") == owner_uid for o in meta(p).get("ownerReferences") or [])]


async def _prepare_pod(ctx: Context, target: ResourceRef, *, need_controller: bool, action: str) -> tuple[
        dict[str, Any], dict[str, Any]]:
    pod = await must_get(ctx, target)
    m = meta(pod)
    if m.get("deletionTimestamp"):
        raise Refused(f"pod {target.namespace}/{target.name} is already terminating (since {m['deletionTimestamp']})")
    owner = controller_of(pod)
    if need_controller and owner is None:
        raise Refused(
            f"pod {target.namespace}/{target.name} has no controller, so nothing would recreate it; "
            f"{action} only acts on controller-managed pods (use delete_pod knowingly, or notify_only)"
        )
    record: dict[str, Any] = {
        "uid": m["uid"],
        "node": (pod.get("spec") or {}).get("nodeName"),
        "phase": (pod.get("status") or {}).get("phase"),
        "ready": is_ready(pod),
        "owner": {k: owner.get(k) for k in ("kind", "name", "uid")} if owner else None,
    }
    if owner:
        record["sibling_uids"] = [meta(p)["uid"] for p in await _siblings(ctx, target.namespace or "", owner["uid"])]
    return pod, record


async def _verify_replaced(ctx: Context, target: ResourceRef, record: dict[str, Any]) -> Verification:
    """The old pod (by uid) is gone, and a pod the controller created since is Ready without restarts."""
    checks: list[str] = []
    current = await ctx.kube.get_or_none("Pod", target.name, target.namespace)
    if current is not None and meta(current).get("uid") == record["uid"]:
        return Verification(None, [f"pod uid {record['uid']} still exists (terminating)"])
    checks.append(f"pod uid {record['uid']} is gone")
    owner = record.get("owner")
    if not owner:
        return Verification(True, checks)
    known = set(record.get("sibling_uids") or [])
    new = [p for p in await _siblings(ctx, target.namespace or "", owner["uid"]) if meta(p)["uid"] not in known]
    if not new:
        return Verification(None, [*checks, f"no replacement pod from {owner['kind']} {owner['name']} yet"])
    restarted = [p for p in new if any((c.get("restartCount") or 0) > 0
                                       for c in (p.get("status") or {}).get("containerStatuses") or [])]
    if restarted:
        names = ", ".join(meta(p)["name"] for p in restarted)
        return Verification(False, [*checks, f"replacement pod(s) {names} restarted already"],
                            {"replacements": [meta(p)["name"] for p in new]})
    ready = [p for p in new if is_ready(p)]
    if not ready:
        return Verification(None, [*checks, f"replacement pod {meta(new[0])['name']} is not Ready yet"])
    return Verification(True, [*checks, f"replacement pod {meta(ready[0])['name']} (uid {meta(ready[0])['uid']}) "
                                        "is Ready with 0 restarts"], {"replacements": [meta(p)["name"] for p in new]})


class ReplacePod(Operation):
    """restart_pod (a DELETE) and evict_pod (an eviction, which PodDisruptionBudgets may refuse): one
    controller-managed pod goes, by uid, and its controller's replacement is watched."""

    def __init__(self, name: str, verb: Literal["delete", "evict"], *, removed: str) -> None:
        self.name = name  # type: ignore[misc]
        self.verb: Literal["delete", "evict"] = verb
        self.removed = removed  # the key of the result's `after` naming the removed uid

    async def prepare(self, ctx: Context, target: ResourceRef, params: RestartPodParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pod, record = await _prepare_pod(ctx, target, need_controller=True, action=self.name)
        write = Write(self.verb, "Pod", target.name, target.namespace, before=pod, uid=record["uid"],
                      grace_period_seconds=params.grace_period_seconds)
        return Prepared([write], record, {self.removed: record["uid"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: RestartPodParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        return await _verify_replaced(ctx, target, record)
