"""Reads the target of an action from the API server: spec hash, pods and their container states.

Reads go through ``ClusterAPI`` (threads, versions, retries of reads). Its errors sort into "gone"
(404: the target no longer exists), "not allowed" (``TargetForbidden``, 401/403: not measurable,
permanent) and transient (``TargetUnavailable``: retry later).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from kubernetes import client

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import ClusterError, Forbidden, NotFound, Unavailable
from kubernaut.cluster.selectors import selector_query
from kubernaut.effectiveness.models import ContainerState, PodState, TargetState
from kubernaut.models.resource import ResourceRef

_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}

TargetForbidden = Forbidden
TargetUnavailable = Unavailable
Obj = dict[str, Any]


def spec_hash(kind: str, spec: dict[str, Any] | None) -> str | None:
    """Hash of the desired state. Replica counts are left out: autoscalers change them routinely,
    and a scaling action's own outcome is judged by health, not by drift."""
    if spec is None:
        return None
    body = dict(spec)
    if kind in _WORKLOADS:
        body.pop("replicas", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp of the API (``2024-05-01T10:00:00Z``); None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _pod_state(pod: Obj) -> PodState:
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    phase = status.get("phase")
    ready = phase == "Running" and any(c.get("type") == "Ready" and c.get("status") == "True"
                                       for c in status.get("conditions") or [])
    containers = []
    for c in status.get("containerStatuses") or []:
        last = (c.get("lastState") or {}).get("terminated")
        waiting = (c.get("state") or {}).get("waiting")
        containers.append(ContainerState(
            name=c.get("name") or "", ready=bool(c.get("ready")), restarts=c.get("restartCount") or 0,
            waiting_reason=waiting.get("reason") if waiting else None,
            last_terminated_reason=last.get("reason") if last else None,
            last_terminated_at=_time(last.get("finishedAt")) if last else None,
        ))
    return PodState(uid=meta.get("uid") or "", name=meta.get("name") or "",
                    created_at=_time(meta.get("creationTimestamp")), ready=ready, phase=phase, containers=containers)


def _managers(meta: Obj) -> list[tuple[str, datetime]]:
    entries = [(m.get("manager") or "unknown", t) for m in meta.get("managedFields") or []
               if (t := _time(m.get("time"))) is not None]
    return sorted(entries, key=lambda e: e[1], reverse=True)


class TargetReader:
    def __init__(self, api: client.ApiClient | ClusterAPI, timeout_s: float) -> None:
        self._api = api if isinstance(api, ClusterAPI) else ClusterAPI(api, timeout_s)

    async def read(self, target: ResourceRef) -> TargetState:
        try:
            return await self._read(target)
        except NotFound:
            return TargetState(exists=False, kind=target.kind)
        except (Forbidden, Unavailable):
            raise
        except ClusterError as exc:  # any other answer to a read is not the target's state: ask again later
            raise Unavailable(f"reading {target}: {exc}") from None

    async def _read(self, target: ResourceRef) -> TargetState:
        api = self._api
        if target.kind == "Node":
            node = await api.get("Node", target.name)
            meta = node.get("metadata") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (node.get("status") or {}).get("conditions") or [])
            return TargetState(exists=True, kind="Node", spec_hash=spec_hash("Node", node.get("spec") or {}),
                               generation=meta.get("generation"), managers=_managers(meta), node_ready=ready)
        if target.kind == "Pod":
            pod = await api.get("Pod", target.name, target.namespace)
            meta = pod.get("metadata") or {}
            return TargetState(exists=True, kind="Pod", spec_hash=spec_hash("Pod", pod.get("spec") or {}),
                               generation=meta.get("generation"), managers=_managers(meta), desired=1,
                               pods=[] if meta.get("deletionTimestamp") else [_pod_state(pod)])
        if target.kind not in _WORKLOADS:
            return TargetState(exists=True, kind=target.kind, supported=False)
        obj = await api.get(target.kind, target.name, target.namespace)
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        if target.kind == "DaemonSet":
            desired = (obj.get("status") or {}).get("desiredNumberScheduled") or 0
        else:
            desired = spec["replicas"] if spec.get("replicas") is not None else 1
        selector = selector_query(spec.get("selector"))
        pods = await api.list("Pod", target.namespace, label_selector=selector) if selector else []
        # Pods on their way out (rollout, deletion) no longer count towards the workload's health.
        live = [p for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")
                and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        return TargetState(exists=True, kind=target.kind, spec_hash=spec_hash(target.kind, spec),
                           generation=meta.get("generation"), managers=_managers(meta), desired=desired,
                           pods=[_pod_state(p) for p in live])
