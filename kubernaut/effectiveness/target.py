"""Reads the target of an action from the API server: spec hash, pods and their container states.

The kubernetes client is synchronous, so every read runs in a worker thread; errors are sorted into
"gone" (404), "not allowed" (403: not measurable, permanent) and transient (retry later).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.rest import ApiException

from kubernaut.effectiveness.models import ContainerState, PodState, TargetState
from kubernaut.models.resource import ResourceRef

_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}


class TargetUnavailable(Exception):
    """The API server could not answer now (unreachable, 5xx, 429): try again later."""


class TargetForbidden(Exception):
    """Our identity may not read the target: the health component cannot be measured."""


def spec_hash(kind: str, spec: dict[str, Any] | None) -> str | None:
    """Hash of the desired state. Replica counts are left out: autoscalers change them routinely,
    and a scaling action's own outcome is judged by health, not by drift."""
    if spec is None:
        return None
    body = dict(spec)
    if kind in _WORKLOADS:
        body.pop("replicas", None)
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _selector(match: dict[str, Any] | None) -> str:
    if not match:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((match.get("matchLabels") or {}).items())]
    for expr in match.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _pod_state(pod: client.V1Pod) -> PodState:
    status = pod.status
    ready = status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                              for c in status.conditions or [])
    containers = []
    for c in status.container_statuses or []:
        last = c.last_state.terminated if c.last_state else None
        containers.append(ContainerState(
            name=c.name, ready=bool(c.ready), restarts=c.restart_count or 0,
            waiting_reason=c.state.waiting.reason if c.state and c.state.waiting else None,
            last_terminated_reason=last.reason if last else None,
            last_terminated_at=_time(last.finished_at) if last else None,
        ))
    return PodState(uid=pod.metadata.uid, name=pod.metadata.name, created_at=_time(pod.metadata.creation_timestamp),
                    ready=ready, phase=status.phase, containers=containers)


def _managers(meta: client.V1ObjectMeta) -> list[tuple[str, datetime]]:
    entries = sorted((m for m in meta.managed_fields or [] if isinstance(m.time, datetime)), key=lambda m: m.time,
                     reverse=True)
    return [(m.manager or "unknown", m.time) for m in entries]


class TargetReader:
    def __init__(self, api_client: client.ApiClient, timeout_s: float) -> None:
        self._api = api_client
        self._timeout = timeout_s

    async def read(self, target: ResourceRef) -> TargetState:
        return await asyncio.to_thread(self._read, target)

    def _read(self, target: ResourceRef) -> TargetState:
        try:
            return self._read_unchecked(target)
        except ApiException as exc:
            if exc.status == 404:
                return TargetState(exists=False, kind=target.kind)
            if exc.status in (401, 403):
                raise TargetForbidden(f"reading {target}: HTTP {exc.status} {exc.reason}") from None
            raise TargetUnavailable(f"reading {target}: HTTP {exc.status} {exc.reason}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TargetUnavailable(f"reading {target}: {type(exc).__name__}: {exc}") from None

    def _read_unchecked(self, target: ResourceRef) -> TargetState:
        kw = {"_request_timeout": self._timeout}
        core = client.CoreV1Api(self._api)
        sanitize = self._api.sanitize_for_serialization
        if target.kind == "Node":
            node = core.read_node(target.name, **kw)
            ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
            return TargetState(exists=True, kind="Node", spec_hash=spec_hash("Node", sanitize(node.spec)),
                               generation=node.metadata.generation, managers=_managers(node.metadata),
                               node_ready=ready)
        if target.kind == "Pod":
            pod = core.read_namespaced_pod(target.name, target.namespace, **kw)
            return TargetState(exists=True, kind="Pod", spec_hash=spec_hash("Pod", sanitize(pod.spec)),
                               generation=pod.metadata.generation, managers=_managers(pod.metadata), desired=1,
                               pods=[] if pod.metadata.deletion_timestamp else [_pod_state(pod)])
        if target.kind not in _WORKLOADS:
            return TargetState(exists=True, kind=target.kind, supported=False)
        apps = client.AppsV1Api(self._api)
        reader = {"Deployment": apps.read_namespaced_deployment, "StatefulSet": apps.read_namespaced_stateful_set,
                  "DaemonSet": apps.read_namespaced_daemon_set, "ReplicaSet": apps.read_namespaced_replica_set}
        obj = reader[target.kind](target.name, target.namespace, **kw)
        spec = sanitize(obj.spec)
        desired = (obj.status.desired_number_scheduled or 0) if target.kind == "DaemonSet" \
            else (obj.spec.replicas if obj.spec.replicas is not None else 1)
        selector = _selector(spec.get("selector"))
        pods = core.list_namespaced_pod(target.namespace, label_selector=selector, **kw).items if selector else []
        # Pods on their way out (rollout, deletion) no longer count towards the workload's health.
        live = [p for p in pods if p.metadata.deletion_timestamp is None and p.status.phase not in
                ("Succeeded", "Failed")]
        return TargetState(exists=True, kind=target.kind, spec_hash=spec_hash(target.kind, spec),
                           generation=obj.metadata.generation, managers=_managers(obj.metadata), desired=desired,
                           pods=[_pod_state(p) for p in live])
