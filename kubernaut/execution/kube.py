"""The executor's door to the Kubernetes API: raw JSON requests, discovery-chosen versions, clear errors.

Why not the typed client: the typed classes of client 37 no longer include policy/v1beta1,
autoscaling/v2beta2 or batch/v1beta1, which servers up to 1.24 still need (the test control plane
is 1.20). Plain dicts also diff and record naturally. The kubernetes client is synchronous, so every
request runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

Obj = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]

_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
FIELD_MANAGER = "kubernaut-executor"


class KubeError(Exception):
    """An API answer other than 2xx, kept with its HTTP status and the server's own message."""

    def __init__(self, status: int, reason: str, message: str, method: str = "", path: str = "") -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.method = method
        self.path = path
        super().__init__(f"{method} {path}: HTTP {status} {reason}: {message}".strip())

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def too_many(self) -> bool:
        return self.status == 429


class KubeUnreachable(Exception):
    """No HTTP answer at all (connection refused, TLS failure, timeout): the outcome of a write is unknown."""


@dataclass(frozen=True)
class Kind:
    """Where a kind lives: group, plural, scope, and the versions we can speak, best first."""

    group: str
    plural: str
    namespaced: bool
    versions: tuple[str, ...]


# Only the kinds the catalog touches; the version actually used is the first one the server serves.
KINDS: dict[str, Kind] = {
    "Pod": Kind("", "pods", True, ("v1",)),
    "Node": Kind("", "nodes", False, ("v1",)),
    "Namespace": Kind("", "namespaces", False, ("v1",)),
    "PersistentVolumeClaim": Kind("", "persistentvolumeclaims", True, ("v1",)),
    "PersistentVolume": Kind("", "persistentvolumes", False, ("v1",)),
    "Event": Kind("", "events", True, ("v1",)),
    "Service": Kind("", "services", True, ("v1",)),
    "ReplicationController": Kind("", "replicationcontrollers", True, ("v1",)),
    "ResourceQuota": Kind("", "resourcequotas", True, ("v1",)),
    "LimitRange": Kind("", "limitranges", True, ("v1",)),
    "Deployment": Kind("apps", "deployments", True, ("v1",)),
    "StatefulSet": Kind("apps", "statefulsets", True, ("v1",)),
    "DaemonSet": Kind("apps", "daemonsets", True, ("v1",)),
    "ReplicaSet": Kind("apps", "replicasets", True, ("v1",)),
    "Job": Kind("batch", "jobs", True, ("v1",)),
    "CronJob": Kind("batch", "cronjobs", True, ("v1", "v1beta1")),
    "HorizontalPodAutoscaler": Kind("autoscaling", "horizontalpodautoscalers", True, ("v2", "v2beta2", "v1")),
    "PodDisruptionBudget": Kind("policy", "poddisruptionbudgets", True, ("v1", "v1beta1")),
    "NetworkPolicy": Kind("networking.k8s.io", "networkpolicies", True, ("v1",)),
    "StorageClass": Kind("storage.k8s.io", "storageclasses", False, ("v1",)),
}


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


class Kube:
    """Async JSON access to one API server with one identity (whatever the ApiClient carries)."""

    def __init__(self, api_client: client.ApiClient, timeout_s: float = 10.0, discovery_ttl_s: float = 300.0,
                 field_manager: str = FIELD_MANAGER) -> None:
        self.api = api_client
        self.field_manager = field_manager
        self.timeout_s = timeout_s
        self._discovery_ttl = discovery_ttl_s
        self._groups: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._resources: dict[str, tuple[float, frozenset[str]]] = {}
        self._eviction: tuple[float, str] | None = None

    # -- raw requests -----------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout_s: float | None = None,
        raw: bool = False,
    ) -> Any:
        return await asyncio.to_thread(
            self._request_sync, method, path, query or [], body, content_type, timeout_s or self.timeout_s, raw
        )

    def _request_sync(
        self, method: str, path: str, query: list[tuple[str, Any]], body: Any, content_type: str,
        timeout_s: float, raw: bool,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            m, url, hdrs, data, _ = self.api.param_serialize(
                method=method, resource_path=path, query_params=query, header_params=headers, body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(m, url, header_params=hdrs, body=data, _request_timeout=timeout_s)
            payload = response.read()
        except ApiException as exc:  # the client wraps TLS failures as status 0
            if not exc.status:
                raise KubeUnreachable(f"{method} {path}: {exc.reason}") from None
            raise _error(exc.status, exc.reason or "", exc.body, method, path) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status < 300:
            raise _error(response.status, response.reason or "", payload, method, path)
        if raw:
            return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
        return json.loads(payload) if payload else {}

    # -- discovery --------------------------------------------------------------------------------

    async def served_versions(self, group: str) -> tuple[str, ...]:
        """Versions of an API group the server serves (cached: discovery rarely changes)."""
        if not group:
            return ("v1",)
        cached = self._groups.get(group)
        if cached is not None and time.monotonic() - cached[0] < self._discovery_ttl:
            return cached[1]
        try:
            doc = await self.request("GET", f"/apis/{group}")
            versions = tuple(v["version"] for v in doc.get("versions", []))
        except KubeError as exc:
            if not exc.not_found:
                raise
            versions = ()
        self._groups[group] = (time.monotonic(), versions)
        return versions

    async def served_resources(self, group: str, version: str) -> frozenset[str]:
        """Resource names of one group/version: a served version need not serve every kind
        (1.20 serves batch/v1 Jobs but CronJobs only in batch/v1beta1)."""
        key = f"{group}/{version}"
        cached = self._resources.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._discovery_ttl:
            return cached[1]
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        doc = await self.request("GET", path)
        names = frozenset(r["name"] for r in doc.get("resources", []))
        self._resources[key] = (time.monotonic(), names)
        return names

    async def resource(self, kind: str) -> Resource:
        """The kind at the best version this server offers (e.g. policy/v1 PDBs, else policy/v1beta1)."""
        spec = KINDS.get(kind)
        if spec is None:
            found = await self._discover_kind(kind)
            if found is None:
                raise KubeError(404, "NotFound", f"the server has no resource of kind {kind!r}")
            return found
        if not spec.group:
            return Resource(kind, "", "v1", spec.plural, spec.namespaced)
        served = await self.served_versions(spec.group)
        for version in spec.versions:
            if version in served and spec.plural in await self.served_resources(spec.group, version):
                return Resource(kind, spec.group, version, spec.plural, spec.namespaced)
        raise KubeError(
            404, "NotFound",
            f"the server serves none of {', '.join(f'{spec.group}/{v}' for v in spec.versions)} for {kind}",
        )

    async def eviction_version(self) -> str:
        """The Eviction apiVersion this server accepts on pods/eviction, read from the subresource's own
        discovery entry in /api/v1 (``{"name": "pods/eviction", "group": "policy", "version": ...}``).

        Not from the policy group's versions: 1.21 serves policy/v1 (PodDisruptionBudgets) while its
        pods/eviction still takes only policy/v1beta1 Evictions; v1 Evictions start with 1.22.
        """
        cached = self._eviction
        if cached is not None and time.monotonic() - cached[0] < self._discovery_ttl:
            return cached[1]
        version = eviction_version_from(await self.request("GET", "/api/v1"))
        self._eviction = (time.monotonic(), version)
        return version

    async def _discover_kind(self, kind: str) -> Resource | None:
        """Fallback for kinds outside KINDS (read-only diagnostics): scan preferred versions."""
        core = await self.request("GET", "/api/v1")
        for res in core.get("resources", []):
            if res.get("kind") == kind and "/" not in res.get("name", ""):
                return Resource(kind, "", "v1", res["name"], bool(res.get("namespaced")))
        groups = await self.request("GET", "/apis")
        for group in groups.get("groups", []):
            preferred = (group.get("preferredVersion") or {}).get("version")
            if not preferred:
                continue
            try:
                doc = await self.request("GET", f"/apis/{group['name']}/{preferred}")
            except KubeError:
                continue
            for res in doc.get("resources", []):
                if res.get("kind") == kind and "/" not in res.get("name", ""):
                    return Resource(kind, group["name"], preferred, res["name"], bool(res.get("namespaced")))
        return None

    # -- object verbs -----------------------------------------------------------------------------

    async def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        res = await self.resource(kind)
        return await self.request("GET", res.path(namespace, name))

    async def get_or_none(self, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return await self.get(kind, name, namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        res = await self.resource(kind)
        query: list[tuple[str, Any]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        doc = await self.request("GET", res.path(namespace), query=query)
        items = doc.get("items", [])
        for item in items:  # list items come without kind/apiVersion; diffs and records want them
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", res.api_version)
        return items

    async def patch(
        self, kind: str, name: str, namespace: str | None, body: Any, *, patch_type: PatchType = "merge",
        dry_run: bool = False, subresource: str | None = None,
    ) -> Obj:
        res = await self.resource(kind)
        return await self.request(
            "PATCH", res.path(namespace, name, subresource), query=self._write_query(dry_run), body=body,
            content_type=_CONTENT_TYPES[patch_type],
        )

    def _write_query(self, dry_run: bool) -> list[tuple[str, Any]]:
        # A field manager makes our writes attributable in managedFields ("who changed this?").
        return [*_dry(dry_run), ("fieldManager", self.field_manager)]

    async def create(self, kind: str, namespace: str | None, body: Obj, *, dry_run: bool = False) -> Obj:
        res = await self.resource(kind)
        body = {"apiVersion": res.api_version, "kind": kind, **body}
        return await self.request("POST", res.path(namespace), query=self._write_query(dry_run), body=body)

    async def delete(
        self, kind: str, name: str, namespace: str | None, *, dry_run: bool = False,
        uid: str | None = None, resource_version: str | None = None, grace_period_seconds: int | None = None,
        propagation: str | None = None,
    ) -> Obj:
        res = await self.resource(kind)
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        if preconditions:
            options["preconditions"] = preconditions
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if propagation:
            options["propagationPolicy"] = propagation
        if dry_run:
            options["dryRun"] = ["All"]
        return await self.request("DELETE", res.path(namespace, name), query=_dry(dry_run), body=options)

    async def evict(
        self, name: str, namespace: str, *, dry_run: bool = False, uid: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> Obj:
        """POST pods/eviction: the API server refuses with 429 while a PodDisruptionBudget forbids it."""
        res = await self.resource("Pod")
        delete_options: Obj = {}
        if uid:
            delete_options["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            delete_options["gracePeriodSeconds"] = grace_period_seconds
        if dry_run:
            delete_options["dryRun"] = ["All"]
        body: Obj = {
            "apiVersion": await self.eviction_version(),
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if delete_options:
            body["deleteOptions"] = delete_options
        return await self.request("POST", res.path(namespace, name, "eviction"), query=_dry(dry_run), body=body)

    async def pod_log(self, name: str, namespace: str, container: str, tail_lines: int, previous: bool = False,
                      timeout_s: float = 5.0) -> str:
        res = await self.resource("Pod")
        query: list[tuple[str, Any]] = [("container", container), ("tailLines", tail_lines)]
        if previous:
            query.append(("previous", "true"))
        return await self.request("GET", res.path(namespace, name, "log"), query=query, timeout_s=timeout_s,
                                  raw=True)


def eviction_version_from(core: Obj) -> str:
    """The Eviction apiVersion from the core /api/v1 resource list (see ``Kube.eviction_version``)."""
    for res in core.get("resources") or []:
        if res.get("name") != "pods/eviction":
            continue
        if "create" not in (res.get("verbs") or []):
            break
        group, version = res.get("group"), res.get("version")
        if group and version:
            return f"{group}/{version}"
        # An entry that names no group/version is from a server older than policy/v1 Evictions.
        return "policy/v1beta1"
    raise KubeError(404, "NotFound", "the server does not offer create on pods/eviction (evictions impossible)")


def _dry(dry_run: bool) -> list[tuple[str, Any]]:
    return [("dryRun", "All")] if dry_run else []


def _error(status: int, reason: str, body: Any, method: str, path: str) -> KubeError:
    message = ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str) and body:
        try:
            doc = json.loads(body)
            message = str(doc.get("message") or "")
            reason = str(doc.get("reason") or reason)
        except (ValueError, AttributeError):
            message = body[:500]
    return KubeError(status, reason, message[:1000], method, path)
