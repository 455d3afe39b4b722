"""Owner-chain lookup through the Kubernetes API: Pod → ReplicaSet → Deployment, Job → CronJob …

The answer is the top controller, so every alert about any pod of a workload lands on the same
fingerprint. Results are cached briefly (pods come and go, owners rarely change); any API problem
falls back to labels, and the resolution records which way was used.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kubernetes import client

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import ApiError, ClusterError, NotFound
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import TargetResolution
from kubernaut.processing.alert_target import resolve_from_labels, workload_fingerprint

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


def _controller(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


class OwnerResolver:
    def __init__(self, api: client.ApiClient | ClusterAPI | None, cluster: str, ttl_s: float, timeout_s: float) -> None:
        self._api = api if api is None or isinstance(api, ClusterAPI) else ClusterAPI(api, timeout_s)
        self._cluster = cluster
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
                cached = await self._walk(self._api, namespace, pod)
            except ApiError as exc:
                note = "pod not found" if isinstance(exc, NotFound) else f"API answered {exc.status}"
                return fallback.model_copy(update={"chain": [*fallback.chain, f"owner lookup: {note}"]})
            except ClusterError as exc:  # unreachable API: labels are still a good answer
                note = f"owner lookup failed: {type(exc).__name__}"
                return fallback.model_copy(update={"chain": [*fallback.chain, note]})
            self._owners.put(key, cached)
        target, chain = cached
        return TargetResolution(target=target, source="kubernetes", chain=chain,
                                fingerprint=workload_fingerprint(self._cluster, target))

    async def _service_owner(self, namespace: str, service: str) -> TargetResolution | None:
        assert self._api is not None
        key = ("service", namespace, service)
        cached = self._owners.get(key)
        if cached is None:
            try:
                cached = await self._service_walk(self._api, namespace, service)
            except ClusterError:  # not a Service here, or the API is unreachable: the labels decide
                return None
            if cached is None:
                return None
            self._owners.put(key, cached)
        target, chain = cached
        return TargetResolution(target=target, source="kubernetes", chain=chain,
                                fingerprint=workload_fingerprint(self._cluster, target))

    async def _service_walk(self, api: ClusterAPI, namespace: str, service: str
                            ) -> tuple[ResourceRef, list[str]] | None:
        svc = await api.get("Service", service, namespace)
        selector = (svc.get("spec") or {}).get("selector") or {}
        if not selector:
            return None
        query = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        pods = await api.list("Pod", namespace, label_selector=query, limit=1)
        if not pods:
            return None
        target, chain = await self._walk(api, namespace, (pods[0].get("metadata") or {}).get("name") or "")
        return target, [f"Service/{service}", *chain]

    async def _walk(self, api: ClusterAPI, namespace: str, pod: str) -> tuple[ResourceRef, list[str]]:
        obj = await api.get("Pod", pod, namespace)
        kind, name, chain = "Pod", pod, [f"Pod/{pod}"]
        for _ in range(_MAX_DEPTH):
            owner = _controller(obj)
            if owner is None:
                break
            kind, name = str(owner.get("kind") or ""), str(owner.get("name") or "")
            chain.append(f"{kind}/{name}")
            if kind in ("ReplicaSet", "Job"):
                obj = await api.get(kind, name, namespace)
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
            ns = await self._api.get("Namespace", namespace)
        except ClusterError:
            return None
        labels = dict((ns.get("metadata") or {}).get("labels") or {})
        self._namespaces.put(namespace, labels)
        return labels
