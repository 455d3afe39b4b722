"""Read-only Kubernetes access for the Context API: raw JSON GET/LIST with per-call timeouts.

The ``kubernetes`` client is synchronous, so every method here blocks; callers run them in threads
(``asyncio.to_thread``). Raw JSON rather than typed models because API versions differ between
clusters (1.20 serves ``policy/v1beta1`` and ``autoscaling/v2beta2``; newer ones ``policy/v1`` and
``autoscaling/v2``) and we pick whichever the server offers.
"""

from __future__ import annotations

import json
import threading
from typing import Any
from urllib.parse import quote

from kubernetes import client
from kubernetes.client.exceptions import ApiException

# kind → (api group, preferred versions newest first, plural, namespaced)
KINDS: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    "Pod": ("", ("v1",), "pods", True),
    "Node": ("", ("v1",), "nodes", False),
    "Namespace": ("", ("v1",), "namespaces", False),
    "Event": ("", ("v1",), "events", True),
    "PersistentVolumeClaim": ("", ("v1",), "persistentvolumeclaims", True),
    "ResourceQuota": ("", ("v1",), "resourcequotas", True),
    "Deployment": ("apps", ("v1",), "deployments", True),
    "StatefulSet": ("apps", ("v1",), "statefulsets", True),
    "DaemonSet": ("apps", ("v1",), "daemonsets", True),
    "ReplicaSet": ("apps", ("v1",), "replicasets", True),
    "ControllerRevision": ("apps", ("v1",), "controllerrevisions", True),
    "Job": ("batch", ("v1",), "jobs", True),
    "CronJob": ("batch", ("v1", "v1beta1"), "cronjobs", True),
    "HorizontalPodAutoscaler": ("autoscaling", ("v2", "v2beta2", "v1"), "horizontalpodautoscalers", True),
    "PodDisruptionBudget": ("policy", ("v1", "v1beta1"), "poddisruptionbudgets", True),
    "NetworkPolicy": ("networking.k8s.io", ("v1",), "networkpolicies", True),
    "StorageClass": ("storage.k8s.io", ("v1",), "storageclasses", False),
    "Service": ("", ("v1",), "services", True),
    "Endpoints": ("", ("v1",), "endpoints", True),
    "ConfigMap": ("", ("v1",), "configmaps", True),
    "Secret": ("", ("v1",), "secrets", True),
}
# Kinds whose content is never read, only whether they exist (their metadata).
METADATA_ONLY = frozenset({"Secret"})
_METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


class KubeError(Exception):
    """A read failed; ``status`` is the HTTP status when the server answered (404 → not found)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeReader:
    def __init__(self, api_client: client.ApiClient, request_timeout_s: float) -> None:
        self._api = api_client
        self._timeout = request_timeout_s
        self._versions: dict[str, str] = {}
        self._lock = threading.Lock()

    def knows(self, kind: str) -> bool:
        return kind in KINDS

    def _version(self, kind: str) -> str:
        """The newest version that serves ``kind`` (discovered once per group version): a group can be
        served in a version without the resource (batch/v1 has no CronJob before Kubernetes 1.21)."""
        group, preferred, plural, _ = KINDS[kind]
        if not group or len(preferred) == 1:
            return preferred[0]
        for version in preferred:
            key = f"{group}/{version}"
            with self._lock:
                served = self._versions.get(key)
            if served is None:
                try:
                    data = self._call(f"/apis/{key}", self._timeout)
                    served = ",".join(r.get("name", "") for r in data.get("resources", []))
                except KubeError as exc:
                    if exc.status != 404:
                        raise
                    served = ""
                with self._lock:
                    self._versions[key] = served
            if plural in served.split(","):
                return version
        raise KubeError(f"server offers none of {group}/{preferred} for {plural}", status=404)

    def _path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        group, _, plural, namespaced = KINDS[kind]
        version = self._version(kind)
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        ns = f"/namespaces/{quote(namespace, safe='')}" if namespaced and namespace else ""
        tail = f"/{quote(name, safe='')}" if name else ""
        return f"{prefix}{ns}/{plural}{tail}"

    def _call(self, path: str, timeout: float | None, query: list[tuple[str, str]] | None = None,
              accept: str = "application/json") -> dict[str, Any]:
        try:
            method, url, headers, _, _ = self._api.param_serialize(
                method="GET", resource_path=path, query_params=query or [],
                header_params={"Accept": accept}, auth_settings=["BearerToken"],
            )
            response = self._api.call_api(method, url, header_params=headers,
                                          _request_timeout=timeout or self._timeout)
            body = response.read()
        except ApiException as exc:
            raise KubeError(f"API answered {exc.status} {exc.reason}", status=exc.status) from None
        except Exception as exc:  # urllib3 / socket errors: the cluster is unreachable
            raise KubeError(f"API unreachable: {type(exc).__name__}") from None
        if response.status >= 400:
            raise KubeError(f"API answered {response.status} {response.reason}", status=response.status)
        try:
            return json.loads(body)
        except ValueError:
            raise KubeError("API answered something that is not JSON") from None

    def get(self, kind: str, name: str, namespace: str | None = None, timeout: float | None = None
            ) -> dict[str, Any] | None:
        """The object, or None when it does not exist (Secrets: their metadata only, never their data)."""
        accept = _METADATA_ACCEPT if kind in METADATA_ONLY else "application/json"
        try:
            obj = self._call(self._path(kind, namespace, name), timeout, accept=accept)
            if kind in METADATA_ONLY:
                obj = {"metadata": obj.get("metadata") or {}}
            return obj
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None, limit: int = 500, timeout: float | None = None
             ) -> list[dict[str, Any]]:
        if kind in METADATA_ONLY:
            raise KubeError(f"{kind} objects are never listed by the context reader")
        query = [("limit", str(limit))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        data = self._call(self._path(kind, namespace), timeout, query)
        return list(data.get("items") or [])
