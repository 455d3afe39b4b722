"""drain_node: Cordon a node and evict its pods through the Eviction API, respecting PodDisruptionBudgets."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from pydantic import Field

from kubernaut.execution import diff as diffs
from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.kube import KubeError
from kubernaut.execution.operations.base import (
    Applied,
    Context,
    Operation,
    PartialFailure,
    Prepared,
    Refused,
    Verification,
    Write,
    must_get,
    send,
)
from kubernaut.execution.operations.nodes import _conditions
from kubernaut.execution.operations.objects import annotations, controller_of, meta, with_rv
from kubernaut.execution.scope import ObjectScope
from kubernaut.models.resource import ResourceRef


class DrainNodeParams(ActionParams):
    """Evictions only (never plain deletes), so PodDisruptionBudgets always hold; the one knob that
    would let a drain ignore them is deliberately a constant."""

    grace_period_seconds: int | None = Field(
        default=None, ge=0, le=3600, description="Grace period per evicted pod; omitted = each pod's own."
    )
    timeout_seconds: int = Field(
        default=600,
        ge=30,
        le=3600,
        description="Give up (node stays cordoned) when pods remain after this long.",
    )
    ignore_daemonsets: bool = Field(
        default=True,
        description="Leave DaemonSet pods in place (they would be recreated on the node anyway).",
    )
    delete_emptydir_data: bool = Field(
        default=False, description="Allow evicting pods with emptyDir volumes, whose data is lost."
    )
    max_unavailable_respected: Literal[True] = Field(
        default=True,
        description="Always true: evictions blocked by a PodDisruptionBudget are retried, never forced.",
    )


def _plan_drain(target: ResourceRef, params: DrainNodeParams) -> PlanDraft:
    grace = (
        f" deleteOptions.gracePeriodSeconds={params.grace_period_seconds}"
        if params.grace_period_seconds is not None
        else ""
    )
    skip = "DaemonSet pods are skipped" if params.ignore_daemonsets else "refuse when DaemonSet pods are present"
    emptydir = "evicted (emptyDir data lost)" if params.delete_emptydir_data else "a reason to refuse"
    warnings = ["pods with emptyDir volumes lose that data"] if params.delete_emptydir_data else []
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record spec.unschedulable for the inverse)",
            f"PATCH {ref(target)} spec.unschedulable=true",
            f"LIST v1 Pod in all namespaces fieldSelector=spec.nodeName={target.name} (mirror pods are "
            f"skipped; {skip}; pods without a controller refuse the drain; pods with emptyDir are {emptydir})",
            f"CREATE policy/v1 Eviction for each remaining pod (POST v1 pods/eviction){grace}; HTTP 429 "
            "(PodDisruptionBudget) is retried with backoff, never forced",
            f"WATCH v1 Pod fieldSelector=spec.nodeName={target.name} until only skipped pods remain, or fail "
            f"after {params.timeout_seconds}s leaving the node cordoned",
        ],
        warnings=warnings,
    )


MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


def _pod_id(pod: dict[str, Any]) -> str:
    return f"{meta(pod).get('namespace')}/{meta(pod).get('name')}"


class DrainNode(Operation):
    """Cordon, then evict every evictable pod; 429 (a PDB forbids it now) is retried with backoff until
    the timeout, never bypassed by a delete."""

    name = "drain_node"

    async def prepare(self, ctx: Context, target: ResourceRef, params: DrainNodeParams,
                      undo: dict[str, Any] | None) -> Prepared:
        node = await must_get(ctx, target)
        was_cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        pods = await ctx.kube.list("Pod", None, field_selector=f"spec.nodeName={target.name}")
        evict, skipped, problems = [], [], []
        for pod in pods:
            m, spec = meta(pod), pod.get("spec") or {}
            phase = (pod.get("status") or {}).get("phase")
            owner = controller_of(pod)
            if MIRROR_ANNOTATION in annotations(pod):
                skipped.append(f"{_pod_id(pod)} (mirror pod)")
            elif m.get("deletionTimestamp"):
                skipped.append(f"{_pod_id(pod)} (already terminating)")
            elif owner is not None and owner.get("kind") == "DaemonSet":
                if params.ignore_daemonsets:
                    skipped.append(f"{_pod_id(pod)} (DaemonSet)")
                else:
                    problems.append(f"{_pod_id(pod)} belongs to DaemonSet {owner.get('name')} "
                                    "(ignore_daemonsets=false)")
            elif owner is None and phase not in ("Succeeded", "Failed"):
                problems.append(f"{_pod_id(pod)} has no controller and would be lost")
            elif any("emptyDir" in v for v in spec.get("volumes") or []) and not params.delete_emptydir_data \
                    and phase not in ("Succeeded", "Failed"):
                problems.append(f"{_pod_id(pod)} uses emptyDir (set delete_emptydir_data to accept losing it)")
            else:
                evict.append(pod)
        # Every pod a drain would evict is an object it touches: each must be in the managed scope on
        # its own. Unmanaged pods are not skipped (the node would not be empty, and the drain would
        # claim a success it did not have), and not left to an approval either: whoever approves this
        # remediation is not the owner who kept those pods out of scope. The whole drain is refused.
        _, outside = await ObjectScope(ctx.kube, ctx.config).split("Pod", evict)
        if outside:
            listed = ", ".join(_pod_id(p) for p, _ in outside[:10]) + (
                f" and {len(outside) - 10} more" if len(outside) > 10 else "")
            problems.insert(0, (
                f"{len(outside)} pod(s) on the node are outside the managed scope and Kubernaut evicts only "
                f"managed pods: {listed} (first: {outside[0][1].reason}); drain the node by hand or opt them in"))
        if problems:
            raise Refused("cannot drain: " + "; ".join(problems[:20]))
        others = [n for n in await ctx.kube.list("Node") if meta(n)["name"] != target.name
                  and not (n.get("spec") or {}).get("unschedulable") and _conditions(n).get("Ready") == "True"]
        if evict and not others:
            raise Refused("no other schedulable Ready node: the evicted pods would stay Pending")
        writes = []
        if not was_cordoned:
            writes.append(Write("patch", "Node", target.name, None, with_rv(node, {"spec": {"unschedulable": True}}),
                                before=node))
        for pod in evict:
            writes.append(Write("evict", "Pod", meta(pod)["name"], meta(pod)["namespace"], before=pod,
                                uid=meta(pod)["uid"], grace_period_seconds=params.grace_period_seconds))
        record = {"unschedulable": was_cordoned, "pods": [{"namespace": meta(p)["namespace"], "name": meta(p)["name"],
                                                          "uid": meta(p)["uid"]} for p in evict],
                  "skipped": skipped, "timeout_seconds": params.timeout_seconds}
        return Prepared(writes, record, {"unschedulable": True, "evicted": [_pod_id(p) for p in evict]})

    async def apply(self, ctx: Context, prepared: Prepared, *, dry_run: bool) -> Applied:
        if dry_run:
            return await self._dry_run(ctx, prepared)
        cordon = [w for w in prepared.writes if w.verb == "patch"]
        evictions = [w for w in prepared.writes if w.verb == "evict"]
        parts: list[str] = []
        for write in cordon:
            parts.append(diffs.object_diff(write.before, await send(ctx.kube, write, dry_run=False), write.title,
                                           ctx.redact))
        applied = Applied("", [], after=dict(prepared.planned))
        deadline = time.monotonic() + prepared.record.get("timeout_seconds", 600)
        pending = {w.title: w for w in evictions}
        delay = ctx.config.eviction_backoff_s
        blocked: dict[str, str] = {}
        refusals = 0
        while pending:
            for title, write in list(pending.items()):
                try:
                    await send(ctx.kube, write, dry_run=False)
                except KubeError as exc:
                    if exc.too_many:  # a PodDisruptionBudget forbids it right now: wait, never force
                        blocked[title] = exc.message or "429"
                        refusals += 1
                        continue
                    if exc.not_found or exc.conflict:  # already gone, or replaced (uid precondition)
                        pass
                    else:
                        raise
                parts.append(diffs.object_diff(write.before, None, write.title, ctx.redact))
                pending.pop(title)
                blocked.pop(title, None)
            if not pending:
                break
            if time.monotonic() + delay > deadline:
                applied.diff = diffs.join(parts)
                applied.notes.append(f"evictions still refused by a PodDisruptionBudget: {sorted(pending)}")
                raise PartialFailure(
                    f"drain timed out: {len(pending)} pod(s) could not be evicted without violating a "
                    f"PodDisruptionBudget ({'; '.join(f'{k}: {v}' for k, v in sorted(blocked.items())[:5])}); "
                    "the node stays cordoned", applied)
            await asyncio.sleep(delay)  # backoff between eviction rounds, not a test synchronization
            delay = min(delay * 2, ctx.config.eviction_backoff_max_s)
        applied.diff = diffs.join(parts)
        if refusals:
            applied.notes.append(f"{refusals} eviction attempt(s) were refused by a PodDisruptionBudget (429) and "
                                 "retried until the budget allowed them")
        # Evicted pods terminate gracefully; the drain is done when they are gone from the node.
        while True:
            left = await self._remaining(ctx, prepared)
            if not left:
                break
            if time.monotonic() > deadline:
                raise PartialFailure(f"drain timed out waiting for {len(left)} evicted pod(s) to terminate: "
                                     f"{', '.join(left[:10])}; the node stays cordoned", applied)
            await asyncio.sleep(1.0)
        return applied

    async def _dry_run(self, ctx: Context, prepared: Prepared) -> Applied:
        parts, notes = [], []
        for write in prepared.writes:
            try:
                response = await send(ctx.kube, write, dry_run=True)
            except KubeError as exc:
                if write.verb == "evict" and exc.too_many:
                    notes.append(f"eviction of {write.title} is refused by a PodDisruptionBudget right now (429); "
                                 "the drain would retry it until the timeout, never force it")
                    continue
                raise
            parts.append(diffs.object_diff(write.before, response if write.verb == "patch" else None, write.title,
                                           ctx.redact))
        return Applied(diffs.join(parts), [], notes, dict(prepared.planned))

    @staticmethod
    async def _remaining(ctx: Context, prepared: Prepared) -> list[str]:
        left = []
        for pod in prepared.record["pods"]:
            live = await ctx.kube.get_or_none("Pod", pod["name"], pod["namespace"])
            if live is not None and meta(live).get("uid") == pod["uid"]:
                left.append(f"{pod['namespace']}/{pod['name']}")
        return left

    def inverse(self, target: ResourceRef, params: DrainNodeParams, record: dict[str, Any]) -> dict[str, Any] | None:
        if record.get("unschedulable"):
            return None  # it was cordoned before us: uncordoning is someone else's call
        return self.inverse_request("uncordon_node", target)

    async def verify(self, ctx: Context, target: ResourceRef, params: DrainNodeParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        node = await must_get(ctx, target)
        if not (node.get("spec") or {}).get("unschedulable"):
            return Verification(False, [f"node {target.name} is schedulable again"])
        pods = await ctx.kube.list("Pod", None, field_selector=f"spec.nodeName={target.name}")
        remaining = [p for p in pods if MIRROR_ANNOTATION not in annotations(p)
                     and (controller_of(p) or {}).get("kind") != "DaemonSet"
                     and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        terminating = [p for p in remaining if meta(p).get("deletionTimestamp")]
        running = [p for p in remaining if not meta(p).get("deletionTimestamp")]
        checks = [f"node {target.name} is cordoned"]
        if running:
            return Verification(False, [*checks, f"{len(running)} evictable pod(s) still run there: "
                                                 f"{', '.join(_pod_id(p) for p in running[:10])}"])
        if terminating:
            return Verification(None, [*checks, f"{len(terminating)} pod(s) still terminating"])
        return Verification(True, [*checks, "only DaemonSet/mirror/finished pods remain on the node"])


SPEC = declared(__name__, params=DrainNodeParams, planner=_plan_drain, operation=DrainNode())
