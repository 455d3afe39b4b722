"""The one door to the Kubernetes API: raw JSON requests, versions chosen by discovery, mapped errors.

Every service reaches the cluster through ``ClusterAPI``: the Context API (``kubernaut.context.cluster_reader``),
the executor (``kubernaut.execution.kube``), effectiveness (``kubernaut.effectiveness.target_reader``), the
processor's owner lookup (``kubernaut.processing.owners``), the Warning-event source
(``kubernaut.processing.events``) and the gateway's identity checks (``kubernaut.identity.kubernetes``).

- Raw JSON rather than the typed client: the typed classes of client 37 no longer include
  policy/v1beta1, autoscaling/v2beta2 or batch/v1beta1, which servers up to 1.24 still need (the test
  control plane is 1.20). Plain dicts also diff and record naturally.
- The kubernetes client is synchronous: the ``async`` methods run each exchange in a worker thread
  (or the executor given); the ``*_blocking`` methods are for code already on a worker thread.
- Each call's version is chosen by discovery of that resource (or subresource) with that verb
  (``kubernaut.cluster.discovery``); documents are cached for ``discovery_ttl_s``.
- Errors are mapped once, here, to ``kubernaut.cluster.errors``. Reads (GET) are retried on
  ``Unavailable`` answers (429, 5xx, a refused connection), never after a timeout (the caller's
  deadline is spent) and never for writes (their outcome would be unknown).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, Literal, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubernaut.breaker import CircuitBreaker
from kubernaut.cluster.discovery import Doc, choose, discover_kind, eviction_version_from, group_version_path
from kubernaut.cluster.errors import ApiError, ClusterError, NotFound, ServerError, TooManyRequests, Unreachable
from kubernaut.cluster.kinds import KINDS, Resource

Obj = dict[str, Any]
PatchType = Literal["merge", "strategic", "json"]
T = TypeVar("T")

# The field manager of the executor's writes: their managedFields entries say who changed the object,
# and effectiveness tells the executor's own writes from drift by it.
EXECUTOR_FIELD_MANAGER = "kubernaut-executor"

PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
}
_JSON = "application/json"

ReviewKind = Literal["TokenReview", "SubjectAccessReview"]
_REVIEWS: dict[str, tuple[str, str]] = {  # kind → (apiVersion, plural)
    "TokenReview": ("authentication.k8s.io/v1", "tokenreviews"),
    "SubjectAccessReview": ("authorization.k8s.io/v1", "subjectaccessreviews"),
}


class _Uncached(Exception):
    """A discovery document is not cached: the choice needs a request (in a thread)."""


class ClusterAPI:
    """Async (and blocking) JSON access to one API server with one identity (the ApiClient's)."""

    def __init__(self, api_client: client.ApiClient, timeout_s: float = 10.0, *, discovery_ttl_s: float = 300.0,
                 field_manager: str = EXECUTOR_FIELD_MANAGER, read_retries: int = 1,
                 retry_delay_s: float = 0.2, cluster: str | None = None,
                 circuit: CircuitBreaker | None = None) -> None:
        self.api = api_client
        # In a fleet (kubernaut.cluster.fleet) each cluster's API has its name and a circuit: an unreachable
        # API server then fails its callers at once, without a connection attempt, until the circuit resets.
        self.cluster = cluster
        self.circuit = circuit
        self.timeout_s = timeout_s
        self.field_manager = field_manager
        self.read_retries = read_retries
        self.retry_delay_s = retry_delay_s
        self._discovery_ttl = discovery_ttl_s
        self._docs: dict[str, tuple[float, Doc | None]] = {}
        self._lock = threading.Lock()

    # -- one exchange ------------------------------------------------------------------------------

    def _send(self, method: str, path: str, query: list[tuple[str, Any]], body: Any, content_type: str,
              accept: str, timeout: float | tuple[float, float], stream: bool = False) -> Any:
        """One HTTP exchange through the cluster's circuit (when it has one)."""
        circuit = self.circuit
        if circuit is None:
            return self._exchange(method, path, query, body, content_type, accept, timeout, stream)
        if not circuit.allow():
            raise Unreachable(f"{method} {path}: cluster {self.cluster} unreachable (circuit open, retry in "
                              f"{circuit.retry_in_s() or 0:.0f}s; last error: {circuit.last_error})")
        try:
            result = self._exchange(method, path, query, body, content_type, accept, timeout, stream)
        except Unreachable as exc:
            circuit.record_failure(str(exc)[:300])
            raise
        except ApiError:
            circuit.record_success()  # it answered: the server is reachable
            raise
        except BaseException:
            circuit.release()
            raise
        circuit.record_success()
        return result

    def _exchange(self, method: str, path: str, query: list[tuple[str, Any]], body: Any, content_type: str,
                  accept: str, timeout: float | tuple[float, float], stream: bool = False) -> Any:
        """One HTTP exchange: the payload (bytes), or the open response when ``stream``; errors mapped."""
        headers = {"Accept": accept, "Content-Type": content_type}
        try:
            m, url, hdrs, data, _ = self.api.param_serialize(
                method=method, resource_path=path, query_params=query, header_params=headers, body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(m, url, header_params=hdrs, body=data, _request_timeout=timeout)
            if stream and 200 <= response.status < 300:
                return response.response
            payload = response.read()
        except ApiException as exc:  # the client wraps TLS failures as status 0
            if not exc.status:
                raise Unreachable(f"{method} {path}: {exc.reason}") from None
            raise api_error(exc.status, exc.reason or "", exc.body, method, path) from None
        except urllib3.exceptions.TimeoutError as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}", timed_out=True) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Unreachable(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status < 300:
            raise api_error(response.status, response.reason or "", payload, method, path)
        return payload

    def call(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None, body: Any = None,
             content_type: str = _JSON, accept: str = _JSON, timeout_s: float | None = None,
             raw: bool = False) -> Any:
        """One request (blocking): the JSON answer (or text when ``raw``); reads retried when safe."""
        attempts = 1 + (self.read_retries if method == "GET" else 0)
        for attempt in range(attempts):
            try:
                payload = self._send(method, path, query or [], body, content_type, accept,
                                     timeout_s or self.timeout_s)
                break
            except (TooManyRequests, ServerError, Unreachable) as exc:
                if attempt + 1 >= attempts or (isinstance(exc, Unreachable) and exc.timed_out):
                    raise
                time.sleep(self.retry_delay_s * (attempt + 1))
        if raw:
            return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else payload
        if not payload:
            return {}
        try:
            return json.loads(payload)
        except ValueError:
            raise ClusterError(f"{method} {path}: the API answered something that is not JSON") from None

    async def request(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                      body: Any = None, content_type: str = _JSON, accept: str = _JSON,
                      timeout_s: float | None = None, raw: bool = False) -> Any:
        return await asyncio.to_thread(self.call, method, path, query=query, body=body, content_type=content_type,
                                       accept=accept, timeout_s=timeout_s, raw=raw)

    # -- discovery --------------------------------------------------------------------------------

    def _document(self, path: str, fetch: bool = True) -> Doc | None:
        """A discovery document (None: not served, 404), cached for the discovery TTL."""
        with self._lock:
            cached = self._docs.get(path)
        if cached is not None and time.monotonic() - cached[0] < self._discovery_ttl:
            return cached[1]
        if not fetch:
            raise _Uncached(path)
        try:
            doc: Doc | None = self.call("GET", path)
        except NotFound:
            doc = None
        with self._lock:
            self._docs[path] = (time.monotonic(), doc)
        return doc

    def _choose(self, kind: str, verb: str, subresource: str | None, fetch: bool) -> Resource:
        def lookup(group: str, version: str) -> Doc | None:
            return self._document(group_version_path(group, version), fetch)

        spec = KINDS.get(kind)
        if spec is not None:
            return choose(kind, spec, verb, lookup, subresource)
        if subresource:
            raise NotFound(404, "NotFound", f"no {subresource} subresource known for kind {kind!r}")
        found = discover_kind(kind, verb, self._document("/api/v1", fetch) or {}, self._document("/apis", fetch) or {},
                              lookup)
        if found is None:
            raise NotFound(404, "NotFound", f"the server has no resource of kind {kind!r} offering {verb}")
        return found

    def resource_blocking(self, kind: str, verb: str = "get", subresource: str | None = None) -> Resource:
        """The kind at the best version whose discovery entry offers ``verb`` on it (or its subresource)."""
        return self._choose(kind, verb, subresource, fetch=True)

    async def resource(self, kind: str, verb: str = "get", subresource: str | None = None) -> Resource:
        try:  # decided from cached documents on the event loop; a thread only to fetch one
            return self._choose(kind, verb, subresource, fetch=False)
        except _Uncached:
            return await asyncio.to_thread(self._choose, kind, verb, subresource, True)

    async def eviction_version(self) -> str:
        """The Eviction apiVersion pods/eviction accepts (``kubernaut.cluster.discovery.eviction_version_from``)."""
        try:
            core = self._document("/api/v1", fetch=False)
        except _Uncached:
            core = await asyncio.to_thread(self._document, "/api/v1")
        return eviction_version_from(core or {})

    # -- reads -------------------------------------------------------------------------------------

    def get_blocking(self, kind: str, name: str, namespace: str | None = None, *, accept: str = _JSON,
                     timeout_s: float | None = None, subresource: str | None = None) -> Obj:
        res = self.resource_blocking(kind, "get", subresource)
        return self.call("GET", res.path(namespace, name, subresource), accept=accept, timeout_s=timeout_s)

    def get_or_none_blocking(self, kind: str, name: str, namespace: str | None = None, *, accept: str = _JSON,
                             timeout_s: float | None = None) -> Obj | None:
        try:
            return self.get_blocking(kind, name, namespace, accept=accept, timeout_s=timeout_s)
        except NotFound:
            return None

    def list_page_blocking(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
                           field_selector: str | None = None, limit: int | None = None,
                           continue_token: str | None = None, timeout_s: float | None = None) -> Obj:
        """One page of a list, as the server answers it (``metadata.continue``, ``metadata.resourceVersion``)."""
        res = self.resource_blocking(kind, "list")
        query = _list_query(label_selector, field_selector, limit, continue_token)
        doc = self.call("GET", res.path(namespace), query=query, timeout_s=timeout_s)
        for item in doc.get("items") or []:  # list items come without kind/apiVersion; diffs and records want them
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", res.api_version)
        return doc

    def list_blocking(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
                      field_selector: str | None = None, limit: int | None = None,
                      timeout_s: float | None = None) -> list[Obj]:
        doc = self.list_page_blocking(kind, namespace, label_selector=label_selector, field_selector=field_selector,
                                      limit=limit, timeout_s=timeout_s)
        return list(doc.get("items") or [])

    def open_watch_blocking(self, kind: str, namespace: str | None, *, field_selector: str | None = None,
                            resource_version: str | None = None, timeout_seconds: int = 300,
                            connect_timeout_s: float | None = None) -> Any:
        """A watch stream (urllib3 response, one JSON change per line); the caller closes and releases it.
        The server ends it after ``timeout_seconds``; a connection silent for 30 s more is dead."""
        res = self.resource_blocking(kind, "watch")
        query: list[tuple[str, Any]] = [("watch", "true"), ("allowWatchBookmarks", "true"),
                                        ("timeoutSeconds", timeout_seconds)]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        timeout = (connect_timeout_s or self.timeout_s, timeout_seconds + 30)
        return self._send("GET", res.path(namespace), query, None, _JSON, _JSON, timeout, stream=True)

    async def run(self, fn: Callable[..., T], *args: Any, executor: Executor | None = None, **kwargs: Any) -> T:
        """A blocking method in a worker thread (the default pool, or ``executor``)."""
        if executor is None:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(executor, lambda: fn(*args, **kwargs))

    async def get(self, kind: str, name: str, namespace: str | None = None, *, timeout_s: float | None = None,
                  subresource: str | None = None) -> Obj:
        res = await self.resource(kind, "get", subresource)
        return await self.request("GET", res.path(namespace, name, subresource), timeout_s=timeout_s)

    async def get_or_none(self, kind: str, name: str, namespace: str | None = None, *,
                          timeout_s: float | None = None) -> Obj | None:
        try:
            return await self.get(kind, name, namespace, timeout_s=timeout_s)
        except NotFound:
            return None

    async def list(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, limit: int | None = None,
                   timeout_s: float | None = None) -> list[Obj]:
        res = await self.resource(kind, "list")
        query = _list_query(label_selector, field_selector, limit, None)
        doc = await self.request("GET", res.path(namespace), query=query, timeout_s=timeout_s)
        items = doc.get("items") or []
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", res.api_version)
        return items

    async def pod_log(self, name: str, namespace: str, container: str, tail_lines: int, previous: bool = False,
                      timeout_s: float = 5.0) -> str:
        res = await self.resource("Pod", "get", "log")
        query: list[tuple[str, Any]] = [("container", container), ("tailLines", tail_lines)]
        if previous:
            query.append(("previous", "true"))
        return await self.request("GET", res.path(namespace, name, "log"), query=query, timeout_s=timeout_s,
                                  raw=True)

    # -- writes (never retried here: the caller knows whether repeating one is safe) ----------------

    def _write_query(self, dry_run: bool) -> list[tuple[str, Any]]:
        # A field manager makes our writes attributable in managedFields ("who changed this?").
        return [*_dry(dry_run), ("fieldManager", self.field_manager)]

    async def patch(self, kind: str, name: str, namespace: str | None, body: Any, *,
                    patch_type: PatchType = "merge", dry_run: bool = False, subresource: str | None = None) -> Obj:
        res = await self.resource(kind, "patch", subresource)
        return await self.request("PATCH", res.path(namespace, name, subresource), query=self._write_query(dry_run),
                                  body=body, content_type=PATCH_CONTENT_TYPES[patch_type])

    async def create(self, kind: str, namespace: str | None, body: Obj, *, dry_run: bool = False) -> Obj:
        res = await self.resource(kind, "create")
        body = {"apiVersion": res.api_version, "kind": kind, **body}
        return await self.request("POST", res.path(namespace), query=self._write_query(dry_run), body=body)

    async def delete(self, kind: str, name: str, namespace: str | None, *, dry_run: bool = False,
                     uid: str | None = None, resource_version: str | None = None,
                     grace_period_seconds: int | None = None, propagation: str | None = None) -> Obj:
        res = await self.resource(kind, "delete")
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

    async def review(self, kind: ReviewKind, spec: Obj, *, timeout_s: float | None = None) -> Obj:
        """POST a TokenReview or SubjectAccessReview (the gateway's identity checks): the answered ``status``.

        Both are v1 on every server we support (1.19+), so no discovery request; nothing is persisted, so no
        field manager. Not retried here: the caller answers 503 rather than wait."""
        api_version, plural = _REVIEWS[kind]
        path = f"/apis/{api_version}/{plural}"
        body = {"apiVersion": api_version, "kind": kind, "spec": spec}
        answer = await self.request("POST", path, body=body, timeout_s=timeout_s)
        status = answer.get("status") if isinstance(answer, dict) else None
        if not isinstance(status, dict):
            raise ClusterError(f"POST {path}: the answer has no status")
        return status

    async def evict(self, name: str, namespace: str, *, dry_run: bool = False, uid: str | None = None,
                    grace_period_seconds: int | None = None) -> Obj:
        """POST pods/eviction: the API server refuses with 429 while a PodDisruptionBudget forbids it."""
        res = await self.resource("Pod", "create", "eviction")
        delete_options: Obj = {}
        if uid:
            delete_options["preconditions"] = {"uid": uid}
        if grace_period_seconds is not None:
            delete_options["gracePeriodSeconds"] = grace_period_seconds
        if dry_run:
            delete_options["dryRun"] = ["All"]
        body: Obj = {"apiVersion": await self.eviction_version(), "kind": "Eviction",
                     "metadata": {"name": name, "namespace": namespace}}
        if delete_options:
            body["deleteOptions"] = delete_options
        return await self.request("POST", res.path(namespace, name, "eviction"), query=_dry(dry_run), body=body)


def _list_query(label_selector: str | None, field_selector: str | None, limit: int | None,
                continue_token: str | None) -> list[tuple[str, Any]]:
    query: list[tuple[str, Any]] = []
    if limit:
        query.append(("limit", limit))
    if continue_token:
        query.append(("continue", continue_token))
    if label_selector:
        query.append(("labelSelector", label_selector))
    if field_selector:
        query.append(("fieldSelector", field_selector))
    return query


def _dry(dry_run: bool) -> list[tuple[str, Any]]:
    return [("dryRun", "All")] if dry_run else []


def api_error(status: int, reason: str, body: Any, method: str = "", path: str = "") -> ApiError:
    """The error of a non-2xx answer, with the server's own reason and message from its Status body."""
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
    return ApiError(status, reason, message[:1000], method, path)
