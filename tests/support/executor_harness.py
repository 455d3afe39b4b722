"""Shared fixtures and helpers for the executor tests (no tests here).

Test modules import ``FIXTURES`` names (``*_fixture``) to make the fixtures visible; the fixtures
themselves are named without the suffix (``harness``, ``make_harness``, ``admin``, ...).

* The executor under test runs with the **executor's own kubeconfig**, bound to the ClusterRole
  built from ``rbac_rules()``: every action test therefore also proves the role is sufficient.
* Setup and assertions use the admin identity through the same async ``Kube`` wrapper.
* Node actions never touch the shared simulated nodes: ``private_nodes`` starts a second simulated
  kubelet with its own nodes, tainted so nobody else's pods land there, labelled managed.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client

from kubernaut.config.settings import ExecutionConfig, StorageConfig
from kubernaut.execution.catalog import rbac_rules
from kubernaut.execution.kube import FIELD_MANAGER, Kube
from kubernaut.execution.pipeline import Executor
from kubernaut.models.resource import ResourceRef
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.storage.database import Database
from tests.plugins.kube_testenv import REPO_ROOT, KubeTestEnv, wait_until
from tests.support.polling import eventually

SIM_STATE = "sim.kubernaut.io/state"
PRIVATE_TAINT = "kubernaut.test/private"
PRIVATE_POOL = "kubernaut.test/pool"

# Tests run the executor live with generous budgets; the tests about budgets tighten them.
LIVE = {
    "mode": "live", "cooldown_s": 300, "lock_ttl_s": 15, "lock_wait_s": 2, "max_mutations_per_window": 1000,
    "max_mutations_per_namespace": 1000, "max_nodes_unavailable": 50, "conflict_backoff_s": 0.05,
    "eviction_backoff_s": 0.3, "eviction_backoff_max_s": 1.0,
}


# -- identities ----------------------------------------------------------------------------------


@pytest.fixture(scope="session", name="executor_role")
def executor_role_fixture(kube_testenv: KubeTestEnv, kube_api_client: client.ApiClient) -> list[dict[str, Any]]:
    """ClusterRole kubernaut-executor exactly as the catalog generates it (the test env binds the
    user kubernaut-executor to it); waits until the authorizer answers with it."""
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    rules = rbac_rules()
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "kubernaut-executor", "labels": {"app.kubernetes.io/part-of": "kubernaut"}},
            "rules": rules}
    try:
        rbac.replace_cluster_role("kubernaut-executor", body)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
        rbac.create_cluster_role(body)
    authz = client.AuthorizationV1Api(kube_api_client)

    def allowed() -> bool:
        review = authz.create_subject_access_review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "kubernaut-executor",
                     "resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "eviction"}}})
        return bool(review.status.allowed)

    wait_until(allowed, timeout=30, what="RBAC for kubernaut-executor")
    return rules


@pytest.fixture(scope="session", name="executor_api")
def executor_api_fixture(kube_testenv: KubeTestEnv, executor_role: list[dict[str, Any]]) -> Iterator[client.ApiClient]:
    api = kube_testenv.api_client(kube_testenv.executor_kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session", name="admin")
def admin_fixture(kube_api_client: client.ApiClient) -> Kube:
    return Kube(kube_api_client, field_manager="kubernaut-tests")


# -- the executor under test ---------------------------------------------------------------------


@dataclass
class Harness:
    executor: Executor
    db: Database
    admin: Kube
    config: ExecutionConfig
    incident_id: int
    workflow_id: int
    namespace: str | None = None
    results: list[ActionResult] = field(default_factory=list)

    async def run(self, action: str, target: ResourceRef, parameters: dict[str, Any] | None = None, *,
                  dry_run: bool = False, key: str | None = None, inverse_of: int | None = None) -> ActionResult:
        request = ActionRequest(
            workflow_id=self.workflow_id, incident_id=self.incident_id, action=action, target=target,
            parameters=parameters or {}, idempotency_key=key or f"test-{uuid.uuid4().hex}", dry_run=dry_run,
            inverse_of=inverse_of,
        )
        result = await self.executor.execute(request)
        self.results.append(result)
        return result

    async def undo(self, result: ActionResult) -> ActionResult:
        """Submit the recorded inverse as a new request, as the orchestrator does."""
        assert result.inverse is not None, f"no inverse recorded: {result.message}"
        inv = result.inverse
        return await self.run(inv["action"], ResourceRef.model_validate(inv["target"]), inv["parameters"],
                              inverse_of=inv["inverse_of"])

    async def verified(self, result: ActionResult, timeout: float = 60) -> dict[str, Any]:
        """Poll verify() until it decides; fail unless it passes."""
        async def decided() -> dict[str, Any] | None:
            outcome = await self.executor.verify(result.action_id)
            return outcome if outcome["passed"] is not None else None

        outcome = await eventually(decided, timeout=timeout, interval=0.3, what=f"verification of #{result.action_id}")
        assert outcome["passed"] is True, outcome
        return outcome

    async def row(self, action_id: int) -> Any:
        return await self.db.pool.fetchrow("SELECT * FROM actions WHERE id = $1", action_id)


async def seed_workflow(db: Database) -> tuple[int, int]:
    """The incident → analysis → workflow rows an action request refers to."""
    target = {"kind": "Deployment", "name": "web", "namespace": "test"}
    incident = await db.pool.fetchval(
        "INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source) "
        "VALUES ($1, 'Deployment', 'web', 'test', 'test') RETURNING id", uuid.uuid4().hex)
    analysis = await db.pool.fetchval(
        "INSERT INTO analyses (incident_id, engine, action, target, confidence, root_cause) "
        "VALUES ($1, 'rules', 'notify_only', $2, 1.0, 'test') RETURNING id", incident, target)
    workflow = await db.pool.fetchval(
        "INSERT INTO workflows (incident_id, analysis_id, dry_run) VALUES ($1, $2, false) RETURNING id",
        incident, analysis)
    return incident, workflow


@pytest_asyncio.fixture(loop_scope="session", name="make_harness")
async def make_harness_fixture(fresh_dsn: str, executor_api: client.ApiClient, admin: Kube) -> AsyncIterator[Any]:
    """Factory: a Harness on a fresh database; ``api`` picks the identity (default: the executor's)."""
    made: list[Database] = []

    async def make(api: client.ApiClient | None = None, *, kube: Kube | bool | None = True,
                   clock: Any = None, **overrides: Any) -> Harness:
        config = ExecutionConfig(**{**LIVE, **overrides})
        db = await Database.connect(StorageConfig(dsn=fresh_dsn, pool_max_size=10))
        made.append(db)
        if kube is True:
            kube = Kube(api or executor_api, timeout_s=10)
        executor = Executor(db, config, kube or None, cluster_reason=None if kube else "test: no cluster",
                            cluster_source="test", clock=clock)
        incident_id, workflow_id = await seed_workflow(db)
        return Harness(executor, db, admin, config, incident_id, workflow_id)

    yield make
    for db in made:
        await db.close()


@pytest_asyncio.fixture(loop_scope="session", name="harness")
async def harness_fixture(make_harness: Any, kube_namespace: str) -> Harness:
    h = await make_harness()
    h.namespace = kube_namespace
    return h


# -- private simulated nodes ---------------------------------------------------------------------


@dataclass(frozen=True)
class PrivateNodes:
    pool: str
    names: list[str]

    def toleration(self) -> dict[str, Any]:
        return {"key": PRIVATE_TAINT, "operator": "Equal", "value": self.pool, "effect": "NoSchedule"}

    def pin(self, template_spec: dict[str, Any]) -> dict[str, Any]:
        return {**template_spec, "tolerations": [self.toleration()], "nodeSelector": {PRIVATE_POOL: self.pool}}


@pytest.fixture(scope="session", name="private_nodes")
def private_nodes_fixture(kube_testenv: KubeTestEnv, kube_api_client: client.ApiClient,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateNodes]:
    core = client.CoreV1Api(kube_api_client)
    pool = f"kx{uuid.uuid4().hex[:6]}"
    names = [f"{pool}-{i}" for i in (1, 2, 3)]
    for name in names:
        # Created before the simulated kubelet registers them, so they are tainted from the start and
        # nobody else's pods are ever scheduled here.
        core.create_node({"apiVersion": "v1", "kind": "Node", "metadata": {
            "name": name, "labels": {PRIVATE_POOL: pool, "kubernaut.ai/managed": "true",
                                     "kubernetes.io/hostname": name}},
            "spec": {"taints": [{"key": PRIVATE_TAINT, "value": pool, "effect": "NoSchedule"}]}})
    log = tmp_path_factory.mktemp("simkubelet") / "simkubelet.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(REPO_ROOT / "scripts" / "simkubelet.py"), "--kubeconfig",
             kube_testenv.admin_kubeconfig, "--nodes", str(len(names)), "--prefix", pool, "--lease-interval", "5",
             "--status-interval", "10", "--resync-interval", "1"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
        )

    def ready() -> bool:
        for name in names:
            node = core.read_node(name)
            conds = {c.type: c.status for c in node.status.conditions or []}
            if conds.get("Ready") != "True" or any(t.key.startswith("node.kubernetes.io/")
                                                   for t in node.spec.taints or []):
                return False
        return True

    try:
        wait_until(ready, timeout=90, what=f"private simulated nodes {names} Ready (log {log})")
        yield PrivateNodes(pool, names)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        for name in names:
            try:
                core.delete_node(name)
            except client.ApiException:
                pass


# -- object builders and helpers -----------------------------------------------------------------


def container(name: str = "app", image: str = "nginx:1.25", limits: dict[str, str] | None = None,
              requests: dict[str, str] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if limits:
        resources["limits"] = limits
    if requests:
        resources["requests"] = requests
    return {"name": name, "image": image, **({"resources": resources} if resources else {})}


def workload(kind: str, name: str, replicas: int = 2, *, containers: list[dict[str, Any]] | None = None,
             template_annotations: dict[str, str] | None = None, spec_extra: dict[str, Any] | None = None,
             pod_spec_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    pod_spec = {"terminationGracePeriodSeconds": 5, "containers": containers or [container()],
                **(pod_spec_extra or {})}
    template = {"metadata": {"labels": labels, **({"annotations": template_annotations}
                                                  if template_annotations else {})}, "spec": pod_spec}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template, **(spec_extra or {})}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec.setdefault("serviceName", name)
    return {"metadata": {"name": name, "labels": labels}, "spec": spec}


async def create_ready(admin: Kube, kind: str, ns: str, body: dict[str, Any], *, timeout: float = 90) -> dict[str, Any]:
    await admin.create(kind, ns, body)
    return await wait_rollout(admin, kind, ns, body["metadata"]["name"], timeout=timeout)


async def wait_rollout(admin: Kube, kind: str, ns: str, name: str, *, timeout: float = 90) -> dict[str, Any]:
    from kubernaut.execution.operations.objects import rollout_state

    async def done() -> dict[str, Any] | None:
        obj = await admin.get(kind, name, ns)
        state, _ = rollout_state(obj)
        if state and kind != "DaemonSet":
            want = (obj.get("spec") or {}).get("replicas", 1)
            if (obj.get("status") or {}).get("readyReplicas", 0) != want:
                return None
        return obj if state else None

    return await eventually(done, timeout=timeout, interval=0.3, what=f"{kind} {ns}/{name} rolled out")


async def pods(admin: Kube, ns: str, app: str) -> list[dict[str, Any]]:
    return [p for p in await admin.list("Pod", ns, label_selector=f"app={app}")
            if not p["metadata"].get("deletionTimestamp")]


def rv(obj: dict[str, Any]) -> str:
    return obj["metadata"]["resourceVersion"]


_CONTROLLER_ANNOTATIONS = {"deployment.kubernetes.io/revision"}


def changes(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    """Dotted paths under spec, metadata.labels and metadata.annotations that differ: 'the intended
    effect and nothing else' is asserted as an exact set."""
    def flat(value: Any, prefix: str, out: dict[str, Any]) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                flat(v, f"{prefix}.{k}" if prefix else str(k), out)
        else:
            out[prefix] = value

    def view(obj: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        spec = dict(obj.get("spec") or {})
        if spec.get("taints"):  # the node lifecycle controller mirrors conditions as node.kubernetes.io/* taints
            spec["taints"] = [t for t in spec["taints"] if not t["key"].startswith("node.kubernetes.io/")] or None
        flat(spec, "spec", out)
        flat(obj["metadata"].get("labels") or {}, "labels", out)
        flat({k: v for k, v in (obj["metadata"].get("annotations") or {}).items()
              if k not in _CONTROLLER_ANNOTATIONS}, "annotations", out)
        return out

    a, b = view(before), view(after)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


async def assert_dry_run_changes_nothing(h: Harness, action: str, target: ResourceRef,
                                         parameters: dict[str, Any] | None = None,
                                         watch: list[tuple[str, str, str | None]] | None = None) -> ActionResult:
    """A dry-run request: recorded as dry_run with a diff, and no watched object was written.

    The resourceVersions are compared; when a controller updated an object's status meanwhile (a
    rollout in progress), the proof is that spec, labels and annotations are unchanged and no write
    by the executor's field manager exists in managedFields (a dry-run never persists one).
    """
    objects = watch or [(target.kind, target.name, target.namespace)]
    before = [await h.admin.get(kind, name, ns) for kind, name, ns in objects]
    result = await h.run(action, target, parameters, dry_run=True)
    assert result.status == "dry_run", result
    assert result.diff, result
    assert "dryRun=All" in result.message, result.message
    after = [await h.admin.get(kind, name, ns) for kind, name, ns in objects]
    for old, new in zip(before, after, strict=True):
        if rv(old) == rv(new):
            continue
        assert changes(old, new) == set(), f"a dry-run changed {new['kind']} {new['metadata']['name']}"
        managers = {m.get("manager") for m in new["metadata"].get("managedFields") or []}
        assert FIELD_MANAGER not in managers, f"the executor wrote {new['kind']} {new['metadata']['name']}"
    return result


def frozen_clock(offset_s: float = 0.0) -> Any:
    """The executor's clock shifted by offset_s (real time keeps running)."""
    return lambda: datetime.fromtimestamp(time.time() + offset_s, timezone.utc)
