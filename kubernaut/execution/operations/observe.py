"""collect_diagnostics (read-only) and notify_only (nothing at all).

The bundle is data from the monitored system, possibly hostile: it is stored as JSON on the action
record (never interpreted), bounded in size, and Secrets are never read (the catalog refuses them).
"""

from __future__ import annotations

import json
from typing import Any

from kubernaut.execution.actions.collect_diagnostics import CollectDiagnosticsParams
from kubernaut.execution.kube import KubeError, KubeUnreachable
from kubernaut.execution.operations.base import Context
from kubernaut.execution.operations.objects import is_ready, meta, selector_string
from kubernaut.execution.scope import ObjectScope
from kubernaut.models.resource import ResourceRef

MAX_PODS = 20
MAX_EVENTS = 50
MAX_LOG_CHARS = 20_000
MAX_BUNDLE_CHARS = 256_000
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job")


def _pod_summary(pod: dict[str, Any]) -> dict[str, Any]:
    status = pod.get("status") or {}
    containers = []
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        last = (c.get("lastState") or {}).get("terminated") or {}
        current = next(iter(state), None)
        containers.append({
            "name": c.get("name"), "image": c.get("image"), "ready": c.get("ready"),
            "restart_count": c.get("restartCount", 0), "state": current,
            "reason": (state.get(current) or {}).get("reason") if current else None,
            "last_terminated": {k: last.get(k) for k in ("reason", "exitCode", "finishedAt")} if last else None,
        })
    return {
        "name": meta(pod).get("name"), "namespace": meta(pod).get("namespace"), "uid": meta(pod).get("uid"),
        "node": (pod.get("spec") or {}).get("nodeName"), "phase": status.get("phase"), "ready": is_ready(pod),
        "terminating": bool(meta(pod).get("deletionTimestamp")),
        "conditions": [{k: c.get(k) for k in ("type", "status", "reason")} for c in status.get("conditions") or []],
        "containers": containers,
    }


def _event_summary(event: dict[str, Any]) -> dict[str, Any]:
    involved = event.get("involvedObject") or {}
    return {
        "type": event.get("type"), "reason": event.get("reason"), "message": (event.get("message") or "")[:500],
        "count": event.get("count"), "last": event.get("lastTimestamp") or event.get("eventTime"),
        "object": f"{involved.get('kind')}/{involved.get('name')}",
    }


async def _pods_of(ctx: Context, target: ResourceRef, obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    kube = ctx.kube
    if target.kind == "Pod":
        return [obj] if obj else []
    if target.kind == "Node":
        return await kube.list("Pod", None, field_selector=f"spec.nodeName={target.name}")
    if target.kind == "Namespace":
        return await kube.list("Pod", target.name)
    if obj is None or not target.namespace:
        return []
    spec = obj.get("spec") or {}
    if target.kind in _WORKLOAD_KINDS:
        selector = selector_string(spec.get("selector"))
    elif target.kind == "Service":
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    else:
        return []
    return await kube.list("Pod", target.namespace, label_selector=selector) if selector else []


async def _events(ctx: Context, kind: str, name: str, namespace: str | None) -> list[dict[str, Any]]:
    events = await ctx.kube.list("Event", namespace,
                                 field_selector=f"involvedObject.kind={kind},involvedObject.name={name}")
    events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [_event_summary(e) for e in events[-MAX_EVENTS:]]


async def collect(ctx: Context, target: ResourceRef, params: CollectDiagnosticsParams) -> dict[str, Any]:
    """The diagnostics bundle; errors on optional parts are recorded in it rather than failing it."""
    bundle: dict[str, Any] = {"target": str(target), "collected_at": ctx.clock().isoformat(), "notes": []}
    obj = None
    if target.kind != "Cluster":
        obj = await ctx.kube.get(target.kind, target.name, target.namespace)
        bundle["object"] = {
            "metadata": {k: v for k, v in meta(obj).items() if k not in ("managedFields",)},
            "spec": obj.get("spec"), "status": obj.get("status"),
        }
    pods = await _pods_of(ctx, target, obj)
    # Each pod is an object read on its own: a node's pods span namespaces, kube-system included, and
    # a workload's pods may be labelled out of scope. Only managed pods are collected.
    pods, outside = await ObjectScope(ctx.kube, ctx.config).split("Pod", pods)
    if outside:
        bundle["notes"].append(f"{len(outside)} pod(s) outside the managed scope left out (no status, events or "
                               "logs collected from them)")
    if len(pods) > MAX_PODS:
        bundle["notes"].append(f"{len(pods)} pods; the first {MAX_PODS} are included")
    pods = pods[:MAX_PODS]
    bundle["pods"] = [_pod_summary(p) for p in pods]
    if params.include_events:
        events = [] if target.kind == "Cluster" else await _events(ctx, target.kind, target.name, target.namespace)
        for pod in pods if target.kind != "Pod" else []:
            events += await _events(ctx, "Pod", meta(pod)["name"], meta(pod)["namespace"])
        bundle["events"] = events[-MAX_EVENTS * 2:]
    if params.include_logs:
        bundle["logs"] = await _logs(ctx, pods, params.tail_lines, bundle["notes"])
    text = json.dumps(bundle, default=str)
    if len(text) > MAX_BUNDLE_CHARS:
        bundle.pop("logs", None)
        bundle["notes"].append(f"bundle over {MAX_BUNDLE_CHARS} characters: logs dropped")
    return bundle


async def _logs(ctx: Context, pods: list[dict[str, Any]], tail: int, notes: list[str]) -> dict[str, str]:
    """Logs come from the kubelet through the API server. Where it cannot reach one (no kubelet, as
    in a control plane with simulated nodes) the first failure says so and the rest is skipped."""
    logs: dict[str, str] = {}
    budget = MAX_LOG_CHARS
    for pod in pods:
        for container in (pod.get("spec") or {}).get("containers") or []:
            key = f"{meta(pod)['namespace']}/{meta(pod)['name']}/{container['name']}"
            try:
                text = await ctx.kube.pod_log(meta(pod)["name"], meta(pod)["namespace"], container["name"], tail,
                                              timeout_s=ctx.config.log_timeout_s)
            except KubeError as exc:
                if exc.status >= 500:
                    notes.append(f"logs unavailable: the API server could not reach the kubelet ({exc.message[:200]})"
                                 "; pod statuses and events are included instead")
                    return logs
                notes.append(f"logs of {key}: HTTP {exc.status} {exc.message[:200]}")
                continue
            except KubeUnreachable as exc:
                notes.append(f"logs unavailable: {exc}")
                return logs
            logs[key] = text[-budget:]
            budget -= len(logs[key])
            if budget <= 0:
                notes.append(f"log budget of {MAX_LOG_CHARS} characters reached")
                return logs
    return logs
