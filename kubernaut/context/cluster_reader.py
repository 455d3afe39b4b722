"""Read-only Kubernetes access for the Context API: GET/LIST with per-call timeouts, over ``ClusterAPI``.

The Context API gathers its sections in worker threads, so this reader is blocking; versions come
from discovery and errors are ``kubernaut.cluster.errors`` (``KubeError`` is their base: ``status``
is the HTTP status when the server answered, None when it did not).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import ClusterError as KubeError

__all__ = ["KINDS", "METADATA_ONLY", "KubeError", "KubeReader"]

# The kinds the Context API reads (kubernaut.cluster.kinds says where each lives).
KINDS = frozenset({
    "Pod", "Node", "Namespace", "Event", "PersistentVolumeClaim", "ResourceQuota", "Deployment", "StatefulSet",
    "DaemonSet", "ReplicaSet", "ControllerRevision", "Job", "CronJob", "HorizontalPodAutoscaler",
    "PodDisruptionBudget", "NetworkPolicy", "StorageClass", "Service", "Endpoints", "ConfigMap", "Secret",
    # GitOps owners (kubernaut/gitops/detect.py): where a workload's desired state lives.
    "Application", "Kustomization", "HelmRelease", "GitRepository",
})
# Kinds whose content is never read, only whether they exist (their metadata).
METADATA_ONLY = frozenset({"Secret"})
_METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


class KubeReader:
    def __init__(self, api: client.ApiClient | ClusterAPI, request_timeout_s: float) -> None:
        # No read retries: every call runs under the gathering's deadline, which a retry would overrun.
        self._api = api if isinstance(api, ClusterAPI) else ClusterAPI(api, request_timeout_s, read_retries=0)
        self._timeout = request_timeout_s

    def knows(self, kind: str) -> bool:
        return kind in KINDS

    def get(self, kind: str, name: str, namespace: str | None = None, timeout: float | None = None
            ) -> dict[str, Any] | None:
        """The object, or None when it does not exist (Secrets: their metadata only, never their data)."""
        if kind in METADATA_ONLY:
            obj = self._api.get_or_none_blocking(kind, name, namespace, accept=_METADATA_ACCEPT,
                                                 timeout_s=timeout or self._timeout)
            return None if obj is None else {"metadata": obj.get("metadata") or {}}
        return self._api.get_or_none_blocking(kind, name, namespace, timeout_s=timeout or self._timeout)

    def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = 500, timeout: float | None = None
             ) -> list[dict[str, Any]]:
        if kind in METADATA_ONLY:
            raise KubeError(f"{kind} objects are never listed by the context reader")
        return self._api.list_blocking(kind, namespace, label_selector=label_selector, field_selector=field_selector,
                                       limit=limit, timeout_s=timeout or self._timeout)
