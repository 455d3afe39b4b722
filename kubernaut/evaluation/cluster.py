"""Scenario setup and teardown on a real API server (the official ``kubernetes`` client).

The client is synchronous: every call runs in a worker thread (``asyncio.to_thread``) and polling
sleeps in the event loop, so one slow scenario never blocks another.

* one namespace per scenario, ``ev-<run id>-<scenario id>`` (``namespace.system``: kube-system, with
  object names prefixed ``ev-<run id>-``);
* manifests through ``kubernetes.dynamic.DynamicClient``: discovery picks the resource, and a newer
  ``apiVersion`` the server does not serve (``policy/v1`` PDB, ``autoscaling/v2`` HPA, ``batch/v1``
  CronJob on 1.20) is mapped to the version it does serve;
* private simulated nodes (:class:`PrivateNodes`): one extra ``scripts/simkubelet.py`` for the whole
  run. Each private node carries the taint ``kubernaut.ai/eval-node=<scenario id>:NoSchedule`` from
  its creation on, and the runner adds the matching toleration to the pod templates of its own
  scenario only, so no other scenario's (or anybody's) pods land on a node a scenario is about to
  break.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ApiException as DynamicApiException
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from kubernaut.evaluation.scenario import (
    DeleteStep,
    NodeStateStep,
    PatchStep,
    ReadySpec,
    Scenario,
    Step,
    TaintStep,
    WaitStep,
    placeholders_in,
    substitute,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

MANAGED_LABEL = "kubernaut.ai/managed"
RUN_LABEL = "kubernaut.ai/eval-run"
SCENARIO_LABEL = "kubernaut.ai/eval-scenario"
NODE_TAINT = "kubernaut.ai/eval-node"
SIM_NODE_LABEL = "sim.kubernaut.io/node"
NODE_STATE_ANNOTATION = "sim.kubernaut.io/node-state"
SYSTEM_NAMESPACE = "kube-system"
READY_TIMEOUT_S = 90.0
POLL_S = 0.5
REQUEST_TIMEOUT_S = 20
REPO_ROOT = Path(__file__).resolve().parents[2]
SIMKUBELET = REPO_ROOT / "scripts" / "simkubelet.py"


class SetupError(RuntimeError):
    """A scenario could not be set up (the message says which step and why)."""


def dns_label(text: str, limit: int = 63) -> str:
    """``text`` as a DNS-1123 label: lowercase alphanumerics and '-', at most ``limit`` characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    label = re.sub(r"-{2,}", "-", label)[:limit]
    return label.strip("-") or "x"


def namespace_name(run_id: str, scenario_id: str) -> str:
    return dns_label(f"ev-{run_id}-{scenario_id}")


def object_prefix(run_id: str) -> str:
    return f"ev-{run_id}-"


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def finish(awaitable: Awaitable[T]) -> T:
    """Await cleanup to its end even when the caller is cancelled meanwhile (Ctrl-C, SIGTERM): the
    cancellation is passed on afterwards. Only a second cancellation interrupts it."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


async def poll(check: Callable[[], Awaitable[T]], timeout: float, what: str,
               describe: Callable[[], Awaitable[str]] | None = None) -> T:
    """Await ``check()`` until it returns something truthy; SetupError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = await check()
        except (ApiException, DynamicApiException, OSError) as exc:  # transient API trouble: keep polling
            value, last_error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = ""
            if describe is not None:
                with contextlib.suppress(Exception):
                    detail = await describe()
            elif last_error is not None:
                detail = f"last error: {_api_error(last_error)}"
            raise SetupError(f"timed out after {timeout:.0f}s waiting for {what}" + (f"; {detail}" if detail else ""))
        await asyncio.sleep(POLL_S)


def _api_error(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    body = getattr(exc, "body", None)
    message = None
    if body:
        with contextlib.suppress(ValueError, TypeError):
            message = json.loads(body).get("message")
    if status is not None:
        return f"{status} {message or getattr(exc, 'reason', '') or exc}".strip()
    return str(exc)


# -------------------------------------------------------------------------------------------------
# pod states
# -------------------------------------------------------------------------------------------------
_IMAGE_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_CONFIG_ERROR = {"CreateContainerConfigError", "CreateContainerError"}
_CREATING = {"ContainerCreating", "PodInitializing"}


def pod_states(pod: dict[str, Any]) -> set[str]:
    """The ``ready.state`` names a pod (the API's JSON) is in; empty for a terminating pod."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return set()
    status = pod.get("status") or {}
    phase = status.get("phase")
    main = status.get("containerStatuses") or []
    every = (status.get("initContainerStatuses") or []) + main
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready = conditions.get("Ready") == "True"
    all_running = bool(main) and all("running" in (c.get("state") or {}) for c in main)
    states = {"any"}
    if phase == "Pending":
        states.add("pending")
    if phase == "Running" and all_running:
        states.add("running")
        if not ready:
            states.add("not_ready")
    if ready:
        states.add("ready")
    for container in every:
        state = container.get("state") or {}
        reason = (state.get("waiting") or {}).get("reason")
        if reason == "CrashLoopBackOff":
            states.add("crashloop")
        elif reason in _IMAGE_PULL:
            states.add("image_pull")
        elif reason in _CONFIG_ERROR:
            states.add("config_error")
        elif reason in _CREATING:
            states.add("container_creating")
        for terminated in (state.get("terminated"), (container.get("lastState") or {}).get("terminated")):
            if terminated and terminated.get("reason") == "OOMKilled":
                states.add("oom")
    return states


def describe_pods(pods: list[dict[str, Any]]) -> str:
    if not pods:
        return "no pods match"
    parts = []
    for pod in pods[:8]:
        states = sorted(pod_states(pod) - {"any"}) or ["terminating" if pod["metadata"].get("deletionTimestamp")
                                                       else (pod.get("status") or {}).get("phase", "?")]
        parts.append(f"{pod['metadata']['name']}: {','.join(states)}")
    return "pods seen: " + "; ".join(parts) + (f" (+{len(pods) - 8} more)" if len(pods) > 8 else "")


def pod_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod spec(s) inside a manifest: a Pod's, a workload's template, a CronJob's job template."""
    kind = manifest.get("kind")
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return []
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return [template["spec"]]
    return []


def pod_template_metadata(manifest: dict[str, Any]) -> dict[str, Any] | None:
    if manifest.get("kind") == "Pod":
        return manifest.setdefault("metadata", {})
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        return None
    if manifest.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if isinstance(template, dict):
        return template.setdefault("metadata", {})
    return None


# -------------------------------------------------------------------------------------------------
# the cluster connection shared by all scenarios
# -------------------------------------------------------------------------------------------------
class Cluster:
    """Synchronous API access (call from threads): a typed CoreV1Api plus a DynamicClient."""

    def __init__(self, kubeconfig: str | Path, pool_size: int = 32) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = pool_size
        self.kubeconfig = str(kubeconfig)
        self.api_client = client.ApiClient(cfg)
        self.core = client.CoreV1Api(self.api_client)
        self._dynamic: DynamicClient | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.api_client.close()

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                self._dynamic = DynamicClient(self.api_client)
            return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        """The served resource for (apiVersion, kind): that version when served, else the group's
        preferred served version of the kind, else the kind in any group."""
        dyn = self.dynamic
        with self._lock:
            try:
                return dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                pass
            group = api_version.rpartition("/")[0]
            found = [r for r in dyn.resources.search(kind=kind) if "/" not in (getattr(r, "name", "") or "")]
            if not found:
                raise SetupError(f"{kind} ({api_version}) is not served by this API server") from None
            wanted = _version(api_version.rpartition("/")[2])[0]
            # Same group, then the same major version (autoscaling/v2 -> v2beta2, not v1), most stable first.
            found.sort(key=lambda r: (r.group != group, _version(r.api_version)[0] != wanted,
                                      [-x for x in _version(r.api_version)[1:]], not getattr(r, "preferred", False)))
            return found[0]

    def create(self, manifest: dict[str, Any], namespace: str | None) -> tuple[Any, dict[str, Any]]:
        resource = self.resource(manifest["apiVersion"], manifest["kind"])
        body = copy.deepcopy(manifest)
        body["apiVersion"] = resource.group_version
        ns = None
        if resource.namespaced:
            ns = namespace
            body["metadata"]["namespace"] = namespace
        else:
            body["metadata"].pop("namespace", None)
        created = resource.create(body=body, namespace=ns, _request_timeout=REQUEST_TIMEOUT_S)
        return resource, created.to_dict()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        resource = self.resource(api_version, kind)
        try:
            return resource.get(name=name, namespace=namespace if resource.namespaced else None,
                                _request_timeout=REQUEST_TIMEOUT_S).to_dict()
        except NotFoundError:
            return None

    def patch(self, api_version: str, kind: str, name: str, namespace: str | None, patch: Any,
              patch_type: str | None) -> None:
        resource = self.resource(api_version, kind)
        ns = namespace if resource.namespaced else None
        kinds = {"strategic": "application/strategic-merge-patch+json", "merge": "application/merge-patch+json",
                 "json": "application/json-patch+json"}
        chosen = patch_type or ("json" if isinstance(patch, list) else "strategic")
        try:
            resource.patch(body=patch, name=name, namespace=ns, content_type=kinds[chosen],
                           _request_timeout=REQUEST_TIMEOUT_S)
        except DynamicApiException as exc:
            # Custom resources have no strategic merge: a plain merge patch then.
            if exc.status != 415 or patch_type is not None or chosen != "strategic":
                raise
            resource.patch(body=patch, name=name, namespace=ns, content_type=kinds["merge"],
                           _request_timeout=REQUEST_TIMEOUT_S)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        resource = self.resource(api_version, kind)
        try:
            resource.delete(name=name, namespace=namespace if resource.namespaced else None,
                            body={"propagationPolicy": "Background"}, _request_timeout=REQUEST_TIMEOUT_S)
        except NotFoundError:
            return False
        return True

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        resp = self.core.list_namespaced_pod(namespace, label_selector=selector, _preload_content=False,
                                             _request_timeout=REQUEST_TIMEOUT_S)
        return json.loads(resp.data)["items"]

    def pods_on_nodes(self, nodes: set[str]) -> list[str]:
        resp = self.core.list_pod_for_all_namespaces(field_selector="spec.nodeName!=", _preload_content=False,
                                                     _request_timeout=REQUEST_TIMEOUT_S)
        return [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in json.loads(resp.data)["items"]
                if p["spec"].get("nodeName") in nodes]

    def read_node(self, name: str) -> dict[str, Any] | None:
        try:
            resp = self.core.read_node(name, _preload_content=False, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return json.loads(resp.data)

    def patch_node(self, name: str, body: dict[str, Any]) -> None:
        self.core.patch_node(name, body, _request_timeout=REQUEST_TIMEOUT_S)

    def delete_node(self, name: str) -> None:
        with contextlib.suppress(ApiException):
            self.core.delete_node(name, _request_timeout=REQUEST_TIMEOUT_S)

    def set_taint(self, node: str, taint: dict[str, Any], remove: bool = False) -> None:
        """Add (or remove) one taint, replacing one of the same key and effect; optimistic concurrency."""
        for attempt in range(5):
            current = self.read_node(node)
            if current is None:
                raise SetupError(f"node {node} not found")
            taints = [t for t in current["spec"].get("taints") or []
                      if not (t["key"] == taint["key"] and t["effect"] == taint["effect"])]
            if not remove:
                taints.append(taint)
            ops = [{"op": "test", "path": "/metadata/resourceVersion",
                    "value": current["metadata"]["resourceVersion"]},
                   {"op": "add", "path": "/spec/taints", "value": taints}]
            try:
                self.core.patch_node(node, ops, _request_timeout=REQUEST_TIMEOUT_S)
                return
            except ApiException as exc:
                if exc.status not in (409, 422) or attempt == 4:
                    raise

    def service_account_ready(self, namespace: str) -> bool:
        """Before Kubernetes 1.24 pods are refused until the default ServiceAccount has its token."""
        try:
            sa = self.core.read_namespaced_service_account("default", namespace, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        if sa.secrets:
            return True
        version = client.VersionApi(self.api_client).get_code()
        return int(re.match(r"\d+", version.minor or "0").group() or 0) >= 24  # type: ignore[union-attr]


# -------------------------------------------------------------------------------------------------
# private simulated nodes
# -------------------------------------------------------------------------------------------------
class PrivateNodes:
    """Nodes of the run's own ``scripts/simkubelet.py`` (``--prefix ev-<run id>``): created tainted,
    Ready before any scenario starts; the process is stopped and the Nodes deleted at the end."""

    def __init__(self, cluster: Cluster, run_id: str, script: Path = SIMKUBELET) -> None:
        self.cluster = cluster
        self.prefix = f"ev-{run_id}"
        self.script = script
        self.names: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    async def start(self, owners: list[str], timeout: float = 90.0) -> list[str]:
        """One node per entry of ``owners`` (a scenario id: the node's taint value), in that order."""
        if not owners:
            return []
        if not self.script.is_file():
            raise SetupError(f"{self.script} not found: private nodes need the checkout's simulated kubelet")
        self.names = [f"{self.prefix}-{i}" for i in range(1, len(owners) + 1)]
        for name, owner in zip(self.names, owners, strict=True):
            await in_thread(self._register, name, owner)
        self.process = await in_thread(self._spawn, len(owners))

        async def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise SetupError(f"simulated kubelet exited ({self.process.returncode}); log: {self.log_path}")
            nodes = [await in_thread(self.cluster.read_node, n) for n in self.names]
            return all(n is not None and _node_ready(n) for n in nodes)

        await poll(ready, timeout, f"{len(self.names)} private node(s) Ready (log: {self.log_path})")
        return list(self.names)

    def _spawn(self, count: int) -> subprocess.Popen[bytes]:
        with tempfile.NamedTemporaryFile(prefix=f"{self.prefix}-simkubelet-", suffix=".log", delete=False) as log:
            self.log_path = Path(log.name)
            return subprocess.Popen(
                [sys.executable, "-u", str(self.script), "--kubeconfig", self.cluster.kubeconfig,
                 "--nodes", str(count), "--prefix", self.prefix],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _register(self, name: str, owner: str) -> None:
        # Created here, tainted from the first moment: the simulated kubelet finds it (409) and only
        # reports its status, so no other pod is ever scheduled there.
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", SIM_NODE_LABEL: "true",
                RUN_LABEL: self.prefix.removeprefix("ev-"), SCENARIO_LABEL: owner,
                # Opted in like a scenario's namespace: nodes are in scope only when labelled.
                MANAGED_LABEL: "true"}},
            "spec": {"taints": [{"key": NODE_TAINT, "value": owner, "effect": "NoSchedule"}]},
        }
        try:
            self.cluster.core.create_node(body, _request_timeout=REQUEST_TIMEOUT_S)
        except ApiException as exc:
            if exc.status != 409:
                raise

    async def stop(self, timeout: float = 30.0) -> None:
        if not self.names:
            return
        names = set(self.names)
        # Let the simulated kubelet finish the graceful deletions of the (deleted) namespaces' pods first.
        with contextlib.suppress(SetupError):
            async def gone() -> bool:
                return not await in_thread(self.cluster.pods_on_nodes, names)
            await poll(gone, timeout, "pods on private nodes to go")
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await in_thread(self.process.wait, 10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await in_thread(self.process.wait)
        for name in self.names:
            await in_thread(self.cluster.delete_node, name)
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()


def _node_ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and not any(t.get("key") == "node.kubernetes.io/not-ready" for t in node["spec"].get("taints") or [])


# -------------------------------------------------------------------------------------------------
# one scenario's objects
# -------------------------------------------------------------------------------------------------
class ScenarioEnv:
    """Setup, readiness, pod-name lookups and teardown of one scenario on the cluster."""

    def __init__(self, cluster: Cluster, scenario: Scenario, run_id: str, nodes: list[str]) -> None:
        self.cluster = cluster
        self.scenario = scenario
        self.run_id = run_id
        self.nodes = nodes
        self.system = scenario.namespace.system
        self.namespace = SYSTEM_NAMESPACE if self.system else namespace_name(run_id, scenario.id)
        self.prefix = object_prefix(run_id)
        self.renamed: dict[str, str] = {}  # system scenarios: object name in the scenario -> on the cluster
        self.created: list[tuple[str, str, str, str | None]] = []  # (apiVersion, kind, name, namespace)
        self.namespace_created = False
        self._pods: dict[str, str] = {}
        self._undo: list[Callable[[], None]] = []  # changes to shared nodes, reverted at teardown

    # -- substitutions --------------------------------------------------------------------------
    def selector(self, selector: str) -> str:
        return f"{selector},{RUN_LABEL}={self.run_id}" if self.system else selector

    def sub(self, value: Any, pods: bool = True) -> Any:
        return substitute(value, self.namespace, self.nodes, self._pod_name_cached if pods else None)

    def name(self, name: str) -> str:
        return self.renamed.get(name, name)

    def name_variants(self, name: str) -> set[str]:
        """What an expected target name may be on the cluster (grading)."""
        name = self.sub(name)
        return {name, self.name(name)}

    def _pod_name_cached(self, selector: str) -> str:
        if selector not in self._pods:
            raise SetupError(f"{{pod:{selector}}} used before it was looked up")
        return self._pods[selector]

    async def resolve_pods(self, value: Any) -> None:
        """Look up the pod name of every "{pod:<selector>}" in ``value`` (first matching pod, oldest
        first, not terminating); the first answer is kept for the rest of the scenario."""
        for match in placeholders_in(value):
            selector = match.group(3)
            if selector is None or selector.strip() in self._pods:
                continue
            selector = selector.strip()
            pods = [p for p in await in_thread(self.cluster.list_pods, self.namespace, self.selector(selector))
                    if not p["metadata"].get("deletionTimestamp")]
            if not pods:
                raise SetupError(f"{{pod:{selector}}}: no pod matches in {self.namespace}")
            pods.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))
            self._pods[selector] = pods[0]["metadata"]["name"]

    async def substitute_all(self, value: Any) -> Any:
        await self.resolve_pods(self.sub(value, pods=False))
        return self.sub(value)

    # -- setup ----------------------------------------------------------------------------------
    async def setup(self) -> None:
        await self._namespace()
        for index, manifest in enumerate(self.scenario.objects):
            try:
                await self._create(manifest)
            except SetupError as exc:
                raise SetupError(f"objects[{index}] {manifest['kind']}/{manifest['metadata']['name']}: {exc}") from None
        for index, step in enumerate(self.scenario.setup):
            try:
                await self._step(step)
            except SetupError as exc:
                raise SetupError(f"setup[{index}] {step.kind}: {exc}") from None
            except (ApiException, DynamicApiException) as exc:
                raise SetupError(f"setup[{index}] {step.kind}: {_api_error(exc)}") from None
        if self.scenario.ready is not None:
            await self.wait_ready(self.scenario.ready)

    async def _namespace(self) -> None:
        if not self.system:
            spec = self.scenario.namespace
            labels = {**({MANAGED_LABEL: "true"} if spec.managed else {}), **self.sub(spec.labels, pods=False),
                      RUN_LABEL: self.run_id, SCENARIO_LABEL: self.scenario.id}
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace, labels=labels))
            try:
                await in_thread(self.cluster.core.create_namespace, body, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                raise SetupError(f"namespace {self.namespace}: {_api_error(exc)}") from None
            self.namespace_created = True

        async def sa_ready() -> bool:
            return await in_thread(self.cluster.service_account_ready, self.namespace)

        await poll(sa_ready, 60, f"the default ServiceAccount token in {self.namespace}")

    def _prepare(self, manifest: dict[str, Any]) -> dict[str, Any]:
        body = self.sub(copy.deepcopy(manifest), pods=False)
        meta = body.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), RUN_LABEL: self.run_id, SCENARIO_LABEL: self.scenario.id}
        if self.system:
            original = meta["name"]
            meta["name"] = self.renamed.setdefault(original, dns_label(self.prefix + original, 253))
            template = pod_template_metadata(body)
            if template is not None:
                template["labels"] = {**(template.get("labels") or {}), RUN_LABEL: self.run_id}
        if self.scenario.nodes:
            for spec in pod_specs(body):
                spec["tolerations"] = [*(spec.get("tolerations") or []), {
                    "key": NODE_TAINT, "operator": "Equal", "value": self.scenario.id, "effect": "NoSchedule"}]
        return body

    async def _create(self, manifest: dict[str, Any]) -> None:
        body = self._prepare(manifest)
        try:
            resource, created = await in_thread(self.cluster.create, body, self.namespace)
        except (ApiException, DynamicApiException) as exc:
            raise SetupError(_api_error(exc)) from None
        meta = created.get("metadata") or {}
        self.created.append((resource.group_version, resource.kind, meta.get("name", body["metadata"]["name"]),
                             meta.get("namespace")))

    async def _step(self, step: Step) -> None:
        if step.wait is not None:
            await self._wait(step.wait)
        elif step.patch is not None:
            await self._patch(step.patch)
        elif step.taint is not None:
            await self._taint(step.taint)
        elif step.cordon is not None:
            node = self.sub(step.cordon.node)
            await in_thread(self.cluster.patch_node, node, {"spec": {"unschedulable": True}})
            self._remember(node, lambda: self.cluster.patch_node(node, {"spec": {"unschedulable": None}}))
        elif step.node_state is not None:
            await self._node_state(step.node_state)
        elif step.create is not None:
            await self._create(step.create)
        elif step.delete is not None:
            await self._delete(step.delete)
        elif step.sleep is not None:
            await asyncio.sleep(step.sleep)

    def _api_version(self, kind: str, given: str | None) -> str:
        """An explicit apiVersion, else the one of the scenario's object of that kind, else a default."""
        if given:
            return given
        for manifest in [*self.scenario.objects, *(s.create for s in self.scenario.setup if s.create)]:
            if manifest.get("kind") == kind:
                return manifest["apiVersion"]
        return _DEFAULT_API_VERSIONS.get(kind, "v1")

    def _remember(self, node: str, undo: Callable[[], None]) -> None:
        if node not in self.nodes:  # a shared node: put it back as it was at teardown
            self._undo.append(undo)

    async def _wait(self, wait: WaitStep) -> None:
        if wait.pods is not None:
            counts = wait.pod_counts() or {"any": 1}
            selector = self.sub(wait.pods, pods=False)
            await self._wait_pods(selector, counts, wait.timeout)
            return
        assert wait.kind and wait.name
        kind, name = wait.kind, self.name(self.sub(wait.name))
        api_version = self._api_version(kind, wait.api_version)

        async def done() -> bool:
            obj = await in_thread(self.cluster.get, api_version, kind, name, self.namespace)
            if obj is None:
                return False
            return wait.available is None or _available(obj) >= wait.available

        what = f"{kind}/{name}" + (f" with {wait.available} available" if wait.available is not None else "")

        async def describe() -> str:
            obj = await in_thread(self.cluster.get, api_version, kind, name, self.namespace)
            return "not found" if obj is None else f"status: {json.dumps(obj.get('status') or {})[:400]}"

        await poll(done, wait.timeout, what, describe)

    async def _wait_pods(self, selector: str, counts: dict[str, int], timeout: float) -> None:
        full = self.selector(selector)
        seen: list[dict[str, Any]] = []

        async def done() -> bool:
            nonlocal seen
            seen = await in_thread(self.cluster.list_pods, self.namespace, full)
            states = [pod_states(p) for p in seen]
            return all(sum(state in s for s in states) >= need for state, need in counts.items())

        async def describe() -> str:
            return describe_pods(seen)

        wanted = ", ".join(f"{n} {s}" for s, n in counts.items())
        await poll(done, timeout, f"pods {selector!r} in {self.namespace}: {wanted}", describe)

    async def wait_ready(self, ready: ReadySpec, timeout: float = READY_TIMEOUT_S) -> None:
        try:
            await self._wait_pods(self.sub(ready.pods, pods=False), {ready.state: ready.count}, timeout)
        except SetupError as exc:
            raise SetupError(f"ready: {exc}") from None

    async def _patch(self, patch: PatchStep) -> None:
        name = self.name(await self.substitute_all(patch.name))
        body = await self.substitute_all(patch.patch)
        api_version = self._api_version(patch.kind, patch.api_version)
        await in_thread(self.cluster.patch, api_version, patch.kind, name, self.namespace, body, patch.type)

    async def _taint(self, taint: TaintStep) -> None:
        node = self.sub(taint.node)
        body = {"key": self.sub(taint.key), "effect": taint.effect,
                **({"value": self.sub(taint.value)} if taint.value is not None else {})}
        await in_thread(self.cluster.set_taint, node, body)
        self._remember(node, lambda: self.cluster.set_taint(node, body, remove=True))

    async def _node_state(self, step: NodeStateStep) -> None:
        node = self.sub(step.node)
        value = None if step.state == "Ready" else step.state
        await in_thread(self.cluster.patch_node, node, {"metadata": {"annotations": {NODE_STATE_ANNOTATION: value}}})
        self._remember(node, lambda: self.cluster.patch_node(
            node, {"metadata": {"annotations": {NODE_STATE_ANNOTATION: None}}}))

    async def _delete(self, delete: DeleteStep) -> None:
        name = self.name(await self.substitute_all(delete.name))
        api_version = self._api_version(delete.kind, delete.api_version)
        if not await in_thread(self.cluster.delete, api_version, delete.kind, name, self.namespace):
            raise SetupError(f"{delete.kind}/{name} not found")

    # -- teardown -------------------------------------------------------------------------------
    async def teardown(self) -> list[str]:
        """Delete what the scenario made (the namespace without waiting for it); returns problems."""
        problems: list[str] = []
        for undo in reversed(self._undo):
            try:
                await in_thread(undo)
            except Exception as exc:
                problems.append(f"restoring a shared node: {_api_error(exc)}")
        if self.namespace_created:
            try:
                await in_thread(self.cluster.core.delete_namespace, self.namespace,
                                body=client.V1DeleteOptions(propagation_policy="Background"),
                                _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as exc:
                if exc.status != 404:
                    problems.append(f"namespace {self.namespace}: {_api_error(exc)}")
        for api_version, kind, name, namespace in reversed(self.created):
            if namespace is not None and namespace == self.namespace and self.namespace_created:
                continue  # goes with the namespace
            try:
                await in_thread(self.cluster.delete, api_version, kind, name, namespace)
            except Exception as exc:
                problems.append(f"{kind}/{name}: {_api_error(exc)}")
        return problems


_DEFAULT_API_VERSIONS = {
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "ReplicaSet": "apps/v1",
    "Job": "batch/v1", "CronJob": "batch/v1", "PodDisruptionBudget": "policy/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2", "NetworkPolicy": "networking.k8s.io/v1",
    "Ingress": "networking.k8s.io/v1",
}


def _version(version: str) -> tuple[int, int, int]:
    """"v2beta2" -> (2, 1, 2): major, stability (GA 2, beta 1, alpha 0), its number."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (0, 0, 0)
    stability = {"alpha": 0, "beta": 1, None: 2}[match.group(2)]
    return int(match.group(1)), stability, int(match.group(3) or 0)


def _available(obj: dict[str, Any]) -> int:
    status = obj.get("status") or {}
    for key in ("availableReplicas", "numberAvailable", "readyReplicas", "numberReady"):
        if key in status:
            return int(status[key] or 0)
    return 0
