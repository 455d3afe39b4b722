"""Owner-chain lookup through the Kubernetes API: Pod → ReplicaSet → Deployment, Job → CronJob …

The answer is the top controller, so every alert about any pod of a workload lands on the same
fingerprint. Results are cached briefly (pods come and go, owners rarely change); any API problem
falls back to labels, and the resolution records which way was used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import TargetResolution
from kubernaut.processing.target import resolve_from_labels, workload_fingerprint

logger = logging.getLogger(__name__)

_MAX_DEPTH = 4


class TtlCache:
    def __init__(self, ttl_s: float, max_entries: int = 20_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any | None:
        hit = self._data.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: Any, value: Any) -> None:
        if len(self._data) >= self._max:
            self._data.clear()  # crude but bounded: a cache, not a store
        self._data[key] = (time.monotonic() + self._ttl, value)


def _controller(metadata: Any) -> Any | None:
    for ref in metadata.owner_references or []:
        if ref.controller:
            return ref
    return None


class OwnerResolver:
    def __init__(self, api_client: client.ApiClient | None, cluster: str, ttl_s: float, timeout_s: float) -> None:
        self._api = api_client
        self._cluster = cluster
        self._timeout = timeout_s
        self._owners = TtlCache(ttl_s)
        self._namespaces = TtlCache(ttl_s)

    @property
    def available(self) -> bool:
        return self._api is not None

    async def resolve(self, labels: dict[str, str]) -> TargetResolution:
        fallback = resolve_from_labels(labels, self._cluster)
        pod, namespace = labels.get("pod"), labels.get("namespace")
        service = labels.get("service")
        if self._api is not None and not pod and namespace and service and fallback.target.kind == "Namespace":
            # Application alerts (error rate, latency) name the Service; its pods lead to the workload. A
            # `service` label of the exporter (kube-state-metrics) names no Service in the alert's namespace.
            resolved = await self._service_owner(namespace, service)
            if resolved is not None:
                return resolved
        if self._api is None or not pod or not namespace:
            return fallback
        key = (namespace, pod)
        cached = self._owners.get(key)
        if cached is None:
            try:
                cached = await asyncio.to_thread(self._walk, namespace, pod)
            except ApiException as exc:
                note = "pod not found" if exc.status == 404 else f"API answered {exc.status}"
                return fallback.model_copy(update={"chain": [*fallback.chain, f"owner lookup: {note}"]})
            except Exception as exc:  # unreachable API: labels are still a good answer
                note = f"owner lookup failed: {type(exc).__name__}"
                return fallback.model_copy(update={"chain": [*fallback.chain, note]})
            self._owners.put(key, cached)
        target, chain = cached
        return TargetResolution(target=target, source="kubernetes", chain=chain,
                                fingerprint=workload_fingerprint(self._cluster, target))

    async def _service_owner(self, namespace: str, service: str) -> TargetResolution | None:
        key = ("service", namespace, service)
        cached = self._owners.get(key)
        if cached is None:
            try:
                cached = await asyncio.to_thread(self._service_walk, namespace, service)
            except Exception:  # not a Service here, or the API is unreachable: the labels decide
                return None
            if cached is None:
                return None
            self._owners.put(key, cached)
        target, chain = cached
        return TargetResolution(target=target, source="kubernetes", chain=chain,
                                fingerprint=workload_fingerprint(self._cluster, target))

    def _service_walk(self, namespace: str, service: str) -> tuple[ResourceRef, list[str]] | None:
        core = client.CoreV1Api(self._api)
        svc = core.read_namespaced_service(service, namespace, _request_timeout=self._timeout)
        selector = (svc.spec.selector or {}) if svc.spec else {}
        if not selector:
            return None
        query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = core.list_namespaced_pod(namespace, label_selector=query, limit=1, _request_timeout=self._timeout)
        if not pods.items:
            return None
        target, chain = self._walk(namespace, pods.items[0].metadata.name)
        return target, [f"Service/{service}", *chain]

    def _walk(self, namespace: str, pod: str) -> tuple[ResourceRef, list[str]]:
        core = client.CoreV1Api(self._api)
        apps = client.AppsV1Api(self._api)
        batch = client.BatchV1Api(self._api)
        obj = core.read_namespaced_pod(pod, namespace, _request_timeout=self._timeout)
        kind, name, chain = "Pod", pod, [f"Pod/{pod}"]
        for _ in range(_MAX_DEPTH):
            owner = _controller(obj.metadata)
            if owner is None:
                break
            kind, name = owner.kind, owner.name
            chain.append(f"{kind}/{name}")
            if kind == "ReplicaSet":
                obj = apps.read_namespaced_replica_set(name, namespace, _request_timeout=self._timeout)
            elif kind == "Job":
                obj = batch.read_namespaced_job(name, namespace, _request_timeout=self._timeout)
            else:  # Deployment, StatefulSet, DaemonSet, CronJob, custom controllers: the top
                break
        return ResourceRef(kind=kind, name=name, namespace=namespace), chain

    async def namespace_labels(self, namespace: str | None) -> dict[str, str] | None:
        if self._api is None or not namespace:
            return None
        cached = self._namespaces.get(namespace)
        if cached is not None:
            return cached
        try:
            ns = await asyncio.to_thread(
                client.CoreV1Api(self._api).read_namespace, namespace, _request_timeout=self._timeout
            )
        except Exception:
            return None
        labels = dict(ns.metadata.labels or {})
        self._namespaces.put(namespace, labels)
        return labels
