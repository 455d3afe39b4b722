"""A fleet of two real clusters from one Kubernaut (issue 16): the session's control plane (cluster ``a``) and a
second one started by ``scripts/testenv.sh up --name b``, reached through the RBAC that
``scripts/gen-rayservice.py --spoke-rbac`` prints, applied on it. One live application serves both.

- The same alert name from ``a`` and ``b`` opens two incidents, and each remediation lands on its own cluster.
- ``b``'s API server stopped mid-run: ``a``'s incidents are remediated as usual, ``b``'s wait (its analysis
  is retried, /ready says the clusters are degraded) and are remediated on ``b`` once it is back.
- A kubeconfig kept in a Secret is read from the home cluster and reloaded when the Secret changes.
- Each cluster's Warning-event watch has one owner replica (a lease): two replicas split a and b, and the
  survivor takes over the cluster of one that died.
- The Context API, /api/v1/analyze and MCP's tools read the cluster they are asked about (refusing unknown ones);
  the LLM's investigation tools read the incident's own cluster.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import httpx2
import pytest
import pytest_asyncio
import yaml
from kubernetes import client, utils
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from kubernaut.analysis.deployment import investigation_scope
from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.analysis.rules import load_rules
from kubernaut.analysis.tools.builtin import default_registry
from kubernaut.cluster.client import ClusterConnection
from kubernaut.cluster.errors import Forbidden
from kubernaut.cluster.fleet import Fleet
from kubernaut.config import load_config
from kubernaut.config.settings import KubernautConfig, StorageConfig
from kubernaut.execution.kube import Kube
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from kubernaut.processing.events import RECEIVER, EventSource
from kubernaut.processing.watch_ownership import WatchOwnership
from kubernaut.storage import watch_leases
from kubernaut.storage.database import Database
from tests.plugins.kube_testenv import REPO_ROOT, TESTENV_SCRIPT, KubeTestEnv, wait_until
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    admin_fixture,
    container,
    executor_role_fixture,
    pods,
    workload,
)
from tests.support.fault_injection import fresh_database
from tests.support.live_app import live_application
from tests.support.polling import eventually
from tests.support.tool_calling_llm import ToolCallingLLM, calls

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(900)]

APP = "fleet"
ALERT = "KubePodCrashLooping"


def _testenv(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TESTENV_SCRIPT), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False, env=os.environ.copy())


@dataclass(frozen=True)
class Spoke:
    env: KubeTestEnv
    kubeconfig: str  # the spoke identity's (ServiceAccount kubernaut-spoke with the --spoke-rbac roles)
    token: str


@pytest.fixture(scope="module")
def cluster_b(kube_testenv: KubeTestEnv) -> Iterator[KubeTestEnv]:
    """A second control plane with its own ports and state dir; the default instance is never touched."""
    up = _testenv("up", "--name", "b")
    assert up.returncode == 0, f"scripts/testenv.sh up --name b failed:\n{up.stderr[-3000:]}"
    admin = up.stdout.strip().splitlines()[-1]
    state = str(Path(admin).parent)
    assert state != kube_testenv.state_dir
    assert Path(admin).read_text() != Path(kube_testenv.admin_kubeconfig).read_text()
    yield KubeTestEnv(admin_kubeconfig=admin, rightless_kubeconfig=f"{state}/rightless.kubeconfig",
                      executor_kubeconfig=f"{state}/executor.kubeconfig", state_dir=state)
    _testenv("down", "--name", "b", timeout=120)


def _user_token(kubeconfig: str) -> str:
    return yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]["token"]


def _kubeconfig_with_token(admin_kubeconfig: str, token: str) -> dict[str, Any]:
    doc = yaml.safe_load(Path(admin_kubeconfig).read_text())
    doc["users"] = [{"name": "spoke", "user": {"token": token}}]
    doc["contexts"] = [{"name": "spoke", "context": {"cluster": doc["clusters"][0]["name"], "user": "spoke"}}]
    doc["current-context"] = "spoke"
    return doc


@pytest.fixture(scope="module")
def spoke_b(cluster_b: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory) -> Spoke:
    """`gen-rayservice.py --spoke-rbac` applied on b, and a kubeconfig with the token it issues."""
    rendered = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gen-rayservice.py"), "--spoke-rbac"],
                              capture_output=True, text=True, check=True).stdout
    api = cluster_b.api_client()
    try:
        for doc in yaml.safe_load_all(rendered):
            try:
                utils.create_from_dict(api, doc)
            except utils.FailToCreateError as exc:  # a rerun on a live b: the objects are there already
                assert all(e.status == 409 for e in exc.api_exceptions), exc
        core = client.CoreV1Api(api)

        def token() -> str | None:
            data = core.read_namespaced_secret("kubernaut-spoke-token", "kubernaut").data or {}
            return base64.b64decode(data["token"]).decode() if "token" in data else None

        issued = wait_until(token, timeout=60, what="the token of kubernaut/kubernaut-spoke-token on b")
    finally:
        api.close()
    path = tmp_path_factory.mktemp("spoke") / "b.kubeconfig"
    path.write_text(yaml.safe_dump(_kubeconfig_with_token(cluster_b.admin_kubeconfig, issued)))
    return Spoke(cluster_b, str(path), issued)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fleet_app(serve_app: Any, pg_dsn: str, kube_testenv: KubeTestEnv, executor_role: Any, spoke_b: Spoke
                    ) -> AsyncIterator[tuple[str, str]]:
    dsn = await fresh_database(pg_dsn, "t_fleet")
    async with live_application(
        serve_app, APP, dsn, kube_testenv.executor_kubeconfig,
        cluster_name="a",
        fleet={"circuit_failures": 1, "circuit_reset_s": 2, "reload_interval_s": 1, "unreachable_escalate_after_s": 3,
               "clusters": [
            {"name": "a", "kubeconfig": kube_testenv.executor_kubeconfig},
            {"name": "b", "kubeconfig": spoke_b.kubeconfig}]},
        execution={"cooldown_s": 0},
        orchestration={"stabilization_s": 2, "verify_interval_s": 0.5, "verify_timeout_s": 60,
                       "autonomy_min_cases": 0, "autonomy_min_lower_bound": 0, "cooldown_s": 0},
        work={"poll_interval_s": 0.5, "lease_s": 10,
              "kinds": {"analyze": {"max_attempts": 100, "backoff_initial_s": 0.5, "backoff_max_s": 2}}},
        gateway={"rate_limit_per_s": 0},
        # Each test's OOM fix is judged ineffective (the pods still OOM): learning would then rank another
        # action first for the next incident of the signature on that cluster (the next test's).
        # Per-cluster learning is tested on PostgreSQL: tests/intelligence/test_fleet_learning.py.
        analysis={"learning_enabled": False},
        # The event source on, watching a namespace nobody uses (its alerts would join these tests' incidents):
        # what is checked is who owns each cluster's watch (/api/v1/info).
        processing={"events": {"enabled": True, "namespaces": ["kubernaut-fleet-no-events"]}},
    ) as base:
        yield base, dsn


@dataclass
class Clusters:
    a: Kube
    b: Kube
    namespace: str


@pytest_asyncio.fixture(loop_scope="session")
async def both(admin: Kube, kube_namespace: str, cluster_b: KubeTestEnv) -> AsyncIterator[Clusters]:
    """The same managed namespace in a (kube_namespace) and b."""
    api_b = cluster_b.api_client()
    core = client.CoreV1Api(api_b)
    await asyncio.to_thread(core.create_namespace, client.V1Namespace(
        metadata=client.V1ObjectMeta(name=kube_namespace, labels={"kubernaut.ai/managed": "true"})))

    def sa_ready() -> bool:
        return bool(core.read_namespaced_service_account("default", kube_namespace).secrets)

    await asyncio.to_thread(wait_until, sa_ready, 60, 0.2, f"default ServiceAccount in {kube_namespace} on b")
    try:
        yield Clusters(admin, Kube(api_b, field_manager="kubernaut-tests"), kube_namespace)
    finally:
        try:
            await asyncio.to_thread(core.delete_namespace, kube_namespace)
        except Exception:
            pass  # b may be down or gone (module teardown removes it)
        api_b.close()


def oom_workload(name: str) -> dict[str, Any]:
    """A Deployment whose pods the simulated kubelet keeps OOMKilling: the rules raise its memory (live)."""
    return workload("Deployment", name, replicas=1, containers=[container("app", limits={"memory": "64Mi"})],
                    template_annotations={SIM_STATE: "OOMKilled"}, spec_extra={"strategy": {"type": "Recreate"}})


async def oom_pod(kube: Kube, ns: str, app: str) -> str:
    async def find() -> str | None:
        for pod in await pods(kube, ns, app):
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if (status.get("lastState", {}).get("terminated") or {}).get("reason") == "OOMKilled":
                    return pod["metadata"]["name"]
        return None

    return await eventually(find, timeout=90, what=f"an OOMKilled pod of {app}")


def webhook(cluster: str, namespace: str, pod: str) -> dict[str, Any]:
    labels = {"alertname": ALERT, "cluster": cluster, "namespace": namespace, "pod": pod, "container": "app",
              "severity": "warning"}
    alert = {"status": "firing", "labels": labels, "annotations": {"summary": "Pod is crash looping."},
             "startsAt": "2026-12-05T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "fingerprint": uuid.uuid4().hex[:16]}
    return {"version": "4", "groupKey": f"{{}}:{{cluster=\"{cluster}\"}}", "truncatedAlerts": 0, "status": "firing",
            "receiver": "kubernaut", "groupLabels": {}, "commonLabels": labels, "commonAnnotations": {},
            "externalURL": "http://am", "alerts": [alert]}


async def incident_of(db: asyncpg.Connection, cluster: str, ns: str, name: str) -> int:
    async def opened() -> int | None:
        return await db.fetchval("SELECT id FROM incidents WHERE cluster = $1 AND target_namespace = $2 "
                                 "AND target_name = $3", cluster, ns, name)

    return await eventually(opened, timeout=60, what=f"an incident for {name} on {cluster}")


async def live_action(db: asyncpg.Connection, incident: int, timeout: float = 180) -> asyncpg.Record:
    async def executed() -> asyncpg.Record | None:
        return await db.fetchrow("SELECT * FROM actions WHERE incident_id = $1 AND NOT dry_run "
                                 "AND action = 'increase_memory_limits' AND status = 'succeeded'", incident)

    try:
        return await eventually(executed, timeout=timeout, interval=0.5,
                                what=f"the live action of incident {incident}")
    except AssertionError as exc:  # say where it stopped
        facts = {
            "incident": dict(await db.fetchrow("SELECT phase, cluster, target_source FROM incidents WHERE id = $1",
                                               incident) or {}),
            "analyses": [tuple(r) for r in await db.fetch(
                "SELECT action, engine, rule_id, root_cause FROM analyses WHERE incident_id = $1", incident)],
            "steps": [tuple(r) for r in await db.fetch(
                "SELECT s.name, s.status, left(s.detail::text, 300) FROM workflow_steps s JOIN workflows w "
                "ON w.id = s.workflow_id WHERE w.incident_id = $1 ORDER BY s.id", incident)],
            "actions": [tuple(r) for r in await db.fetch(
                "SELECT action, status, dry_run, cluster, error FROM actions WHERE incident_id = $1", incident)],
            "jobs": [tuple(r) for r in await db.fetch(
                "SELECT kind, state, attempts, left(last_error, 300) FROM jobs WHERE ref_id = $1", incident)]}
        raise AssertionError(f"{exc}: {facts}") from None


async def changed_by_executor(kube: Kube, ns: str, name: str) -> bool:
    """The Deployment carries a write by Kubernaut's executor (its field manager), on this cluster."""
    obj = await kube.get("Deployment", name, ns)
    return any(m.get("manager") == "kubernaut-executor" for m in obj["metadata"].get("managedFields") or [])


def apiserver_pid(state_dir: str) -> int | None:
    try:
        pid = int((Path(state_dir) / "pids" / "kube-apiserver.pid").read_text().strip())
        return pid if b"kube-apiserver" in Path(f"/proc/{pid}/cmdline").read_bytes() else None
    except (OSError, ValueError):
        return None


async def test_same_alert_from_two_clusters_opens_two_incidents_each_remediated_on_its_own_cluster(
    fleet_app: tuple[str, str], both: Clusters
) -> None:
    base, dsn = fleet_app
    ns = both.namespace
    for kube in (both.a, both.b):
        await kube.create("Deployment", ns, oom_workload("leaky"))  # never Ready: its pods are OOMKilled
    pod_a, pod_b = await oom_pod(both.a, ns, "leaky"), await oom_pod(both.b, ns, "leaky")
    db = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            for cluster, pod in (("a", pod_a), ("b", pod_b)):
                assert (await http.post("/api/v1/alerts", json=webhook(cluster, ns, pod))).status_code == 200
            incident_a, incident_b = await incident_of(db, "a", ns, "leaky"), await incident_of(db, "b", ns, "leaky")
            assert incident_a != incident_b  # same alert name, same workload name: one incident per cluster
            action_a, action_b = await live_action(db, incident_a), await live_action(db, incident_b)
            assert (action_a["cluster"], action_b["cluster"]) == ("a", "b")
            assert action_a["target_key"] == f"{ns}:Deployment:leaky"  # the home cluster's keys are unchanged
            assert action_b["target_key"] == f"b@{ns}:Deployment:leaky"
            # Each write landed on its own cluster: had both gone to one, the other would carry none.
            assert await changed_by_executor(both.a, ns, "leaky")
            assert await changed_by_executor(both.b, ns, "leaky")
            listed = (await http.get("/api/v1/incidents", params={"cluster": "b"})).json()["items"]
            assert [i["id"] for i in listed] == [incident_b] and listed[0]["cluster"] == "b"

            # An alert naming a cluster Kubernaut does not manage: stored, shown, escalated, never acted on.
            assert (await http.post("/api/v1/alerts", json=webhook("c", ns, pod_a))).status_code == 200
            unknown = await incident_of(db, "c", ns, "leaky")
            view = await eventually(lambda: _view_when(http, unknown, lambda v: v["notifications"]),
                                    timeout=30, what="the unknown cluster's escalation")
            assert view["phase"] == "escalated" and view["cluster"] == "c"
            assert "'c'" in view["notifications"][0]["body"] and "Nothing is analysed or changed" in \
                view["notifications"][0]["body"]
            await asyncio.sleep(2)
            assert await db.fetchval("SELECT count(*) FROM analyses WHERE incident_id = $1", unknown) == 0
            assert await db.fetchval("SELECT count(*) FROM actions WHERE incident_id = $1", unknown) == 0
    finally:
        await db.close()


async def _view_when(http: httpx.AsyncClient, incident: int, ready: Any) -> dict[str, Any] | None:
    view = (await http.get(f"/api/v1/incidents/{incident}")).json()
    return view if ready(view) else None


async def test_cluster_b_down_mid_run_a_carries_on_b_waits_and_resumes(
    fleet_app: tuple[str, str], both: Clusters, cluster_b: KubeTestEnv
) -> None:
    base, dsn = fleet_app
    ns = both.namespace
    for kube in (both.a, both.b):
        await kube.create("Deployment", ns, oom_workload("leaky2"))
    pod_a, pod_b = await oom_pod(both.a, ns, "leaky2"), await oom_pod(both.b, ns, "leaky2")
    pid = apiserver_pid(cluster_b.state_dir)
    assert pid, "no kube-apiserver of cluster b"
    db = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            os.kill(pid, signal.SIGKILL)
            try:
                await eventually(lambda: asyncio.to_thread(lambda: apiserver_pid(cluster_b.state_dir) is None),
                                 timeout=10, what="b's API server gone")
                for cluster, pod in (("a", pod_a), ("b", pod_b)):
                    assert (await http.post("/api/v1/alerts", json=webhook(cluster, ns, pod))).status_code == 200
                incident_a, incident_b = (await incident_of(db, "a", ns, "leaky2"),
                                          await incident_of(db, "b", ns, "leaky2"))
                # a is not held up by b: remediated while b is still down.
                action_a = await live_action(db, incident_a)
                assert action_a["cluster"] == "a" and await changed_by_executor(both.a, ns, "leaky2")
                assert apiserver_pid(cluster_b.state_dir) is None
                # b's incident waits: its analysis is retried, nothing decided blind, nothing executed.

                async def waiting() -> asyncpg.Record | None:
                    return await db.fetchrow(
                        "SELECT attempts, last_error FROM jobs WHERE kind = 'analyze' AND ref_id = $1 "
                        "AND attempts >= 1 AND last_error LIKE '%cluster b unreachable%'", incident_b)

                await eventually(waiting, timeout=30, what="b's analysis waiting for b")
                # Past fleet.unreachable_escalate_after_s a human is told which cluster, since when.
                note = await eventually(lambda: db.fetchrow(
                    "SELECT n.title, n.body, i.phase FROM notifications n JOIN incidents i ON i.id = n.incident_id "
                    "WHERE n.incident_id = $1 AND n.title LIKE '%cluster b unreachable%'", incident_b),
                    timeout=60, what="b's incident escalated: cluster b unreachable")
                assert note["phase"] == "escalated" and "has not answered since" in note["body"]
                assert await db.fetchval("SELECT count(*) FROM analyses WHERE incident_id = $1", incident_b) == 0
                ready = await eventually(
                    lambda: _ready_when(http, lambda body: body.get("clusters") == "degraded"),
                    timeout=30, what="/ready: clusters degraded")
                assert ready["ready"] is True  # a degraded cluster never makes Kubernaut unready
            finally:
                up = await asyncio.to_thread(_testenv, "up", "--name", "b")
                assert up.returncode == 0, up.stderr[-3000:]
            # b is back: its incident is analysed and remediated on b.
            action_b = await live_action(db, incident_b, timeout=240)
            assert action_b["cluster"] == "b" and await changed_by_executor(both.b, ns, "leaky2")
            await eventually(lambda: _ready_when(http, lambda body: body.get("clusters") == "ok"),
                             timeout=60, what="/ready: clusters ok again")
    finally:
        await db.close()


async def _ready_when(http: httpx.AsyncClient, ready: Any) -> dict[str, Any] | None:
    body = (await http.get("/ready")).json()
    return body if ready(body) else None


async def test_a_kubeconfig_secret_on_the_home_cluster_is_read_and_hot_reloaded(
    kube_testenv: KubeTestEnv, kube_api_client: Any, kube_namespace: str, spoke_b: Spoke, cluster_b: KubeTestEnv
) -> None:
    core = client.CoreV1Api(kube_api_client)

    def put(token: str) -> None:
        text = yaml.safe_dump(_kubeconfig_with_token(cluster_b.admin_kubeconfig, token))
        body = client.V1Secret(metadata=client.V1ObjectMeta(name="spoke-b"),
                               string_data={"kubeconfig": text})
        try:
            core.replace_namespaced_secret("spoke-b", kube_namespace, body)
        except client.ApiException as exc:
            assert exc.status == 404, exc
            core.create_namespaced_secret(kube_namespace, body)

    await asyncio.to_thread(put, spoke_b.token)
    config = KubernautConfig(cluster_name="a", kubernetes={"kubeconfig": kube_testenv.admin_kubeconfig},
                             fleet={"clusters": [{"name": "a"},
                                                 {"name": "b", "kubeconfig_secret": f"{kube_namespace}/spoke-b"}]})
    fleet = await asyncio.to_thread(Fleet.build, config)
    b = fleet.api("b")
    assert b is not None and fleet.members["b"].connection.source == f"secret:{kube_namespace}/spoke-b"
    assert (await b.request("GET", "/api/v1/namespaces/kubernaut"))["metadata"]["name"] == "kubernaut"
    # The spoke's roles read nodes; a rightless identity may not. The Secret changes → the client is replaced.
    rightless = (await asyncio.to_thread(_user_token, cluster_b.rightless_kubeconfig))
    await asyncio.to_thread(put, rightless)
    assert await asyncio.to_thread(fleet.reload_blocking) == ["b"]
    assert fleet.api("b") is b
    with pytest.raises(Forbidden):
        await b.request("GET", "/api/v1/namespaces/kubernaut")


# -- the event watch of each cluster: one owner replica at a time (kubernaut/processing/watch_ownership.py) -----


def _warning_event(kube_api: Any, namespace: str, pod: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.CoreV1Api(kube_api).create_namespaced_event(namespace, {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{pod}.{uuid.uuid4().hex[:10]}"},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": namespace,
                           "uid": uuid.uuid4().hex, "fieldPath": "spec.containers{app}"},
        "type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
        "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "kubelet"}})


async def test_the_event_watches_are_split_between_replicas_and_a_dead_ones_cluster_is_taken_over(
    fresh_dsn: str, both: Clusters, kube_testenv: KubeTestEnv, cluster_b: KubeTestEnv
) -> None:
    ns = both.namespace
    database = await Database.connect(StorageConfig(dsn=SecretStr(fresh_dsn), pool_max_size=8))
    events = load_config({"processing": {"events": {
        "enabled": True, "namespaces": [ns], "lease_ttl_s": 3, "lease_renew_s": 1}}}).processing.events
    apis = {"a": kube_testenv.api_client(), "b": cluster_b.api_client()}

    def replica(name: str) -> WatchOwnership:
        return WatchOwnership(database.pool, {
            cluster: (lambda cluster=cluster, api=api: EventSource(api, database.pool, events, cluster=cluster))
            for cluster, api in apis.items()}, holder=name, ttl_s=events.lease_ttl_s, renew_s=events.lease_renew_s)

    async def committed_by(cluster: str, pod: str) -> str | None:
        """Which replica's source committed the alert of ``pod``'s event on ``cluster``."""
        found = await database.pool.fetchval(
            "SELECT count(*) FROM alerts WHERE receiver = $1 AND labels->>'cluster' = $2 AND labels->>'pod' = $3",
            RECEIVER, cluster, pod)
        if not found:
            return None
        writers = [r.holder for r in (r1, r2) if getattr(r.source(cluster), "committed", 0)]
        return writers[0] if len(writers) == 1 else f"{len(writers)} replicas"

    r1, r2 = replica("r1"), replica("r2")
    try:
        r1.start()
        r2.start()
        await eventually(lambda: _split(r1, r2), timeout=15, what="each replica owning one cluster")
        owner = {cluster: ("r1" if cluster in r1.owned else "r2") for cluster in apis}
        leases = {lease.cluster: lease.holder for lease in await watch_leases.leases(database.pool)}
        assert leases == owner
        for cluster, api in apis.items():  # each cluster's events are committed by its owner, once
            await asyncio.to_thread(_warning_event, api, ns, f"web-{cluster}")
            assert await eventually(lambda c=cluster: committed_by(c, f"web-{c}"), timeout=30,
                                    what=f"the event alert of {cluster}") == owner[cluster]
        # r1 dies (no release: its leases run out); r2 takes its cluster over within lease TTL + renewal.
        lost = r1.owned[0]
        await r1.stop(release=False)
        await eventually(lambda: _owns(r2, sorted(apis)), timeout=events.lease_ttl_s + 3 * events.lease_renew_s,
                         what=f"r2 taking over {lost}")
        await asyncio.to_thread(_warning_event, apis[lost], ns, f"late-{lost}")
        assert await eventually(lambda: committed_by(lost, f"late-{lost}"), timeout=30,
                                what=f"{lost}'s event alert after the takeover") == "r2"
        assert {lease.cluster: lease.holder for lease in await watch_leases.leases(database.pool)} == \
            dict.fromkeys(apis, "r2")
    finally:
        await r1.stop(release=False)
        await r2.stop()
        await database.close()
        for api in apis.values():
            api.close()


async def _split(r1: WatchOwnership, r2: WatchOwnership) -> bool:
    return len(r1.owned) == len(r2.owned) == 1 and r1.owned != r2.owned


async def _owns(replica: WatchOwnership, clusters: list[str]) -> bool:
    return replica.owned == clusters


# -- the Context API and /api/v1/analyze read the cluster they are asked about ---------------------------------


async def test_context_and_analyze_read_the_named_cluster_and_refuse_an_unknown_one(
    fleet_app: tuple[str, str], both: Clusters
) -> None:
    base, _ = fleet_app
    ns = both.namespace
    await both.b.create("Deployment", ns, workload("Deployment", "only-b", replicas=1,
                                                   containers=[container("app")]))
    pod_b = (await eventually(lambda: pods(both.b, ns, "only-b"), timeout=60, what="only-b's pod on b"))[0]
    pod_name = pod_b["metadata"]["name"]
    query = {"kind": "Deployment", "name": "only-b", "namespace": ns}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        on_b = (await http.get("/api/v1/context", params={**query, "cluster": "b"})).json()
        assert on_b["found"] is True and on_b["cluster"]["name"] == "b" and on_b["workload"]["name"] == "only-b"
        for params in ({**query, "cluster": "a"}, query):  # a, named or by default, has no such Deployment
            on_a = (await http.get("/api/v1/context", params=params)).json()
            assert on_a["found"] is False and on_a["cluster"]["name"] == "a"
        # One processor replica: it owns both clusters' event watches (admins see the owner per cluster).
        watches = (await http.get("/api/v1/info")).json()["event_watch"]
        assert set(watches) == {"a", "b"} and watches["a"]["owner"] and watches["a"]["owner"] == watches["b"]["owner"]
        unknown = await http.get("/api/v1/context", params={**query, "cluster": "c"})
        assert unknown.status_code == 404 and unknown.json()["field"] == "cluster" and "'c'" in unknown.json()["error"]

        # The same alert for b and for a: each analysed with its own cluster's owners and live state.
        body = webhook("b", ns, pod_name)
        body["alerts"].append({**body["alerts"][0], "labels": {**body["alerts"][0]["labels"], "cluster": "a"}})
        answer = await http.post("/api/v1/analyze", json=body)
        assert answer.status_code == 200, answer.text
        by_cluster = {a["cluster"]: a for a in answer.json()["analyses"]}
        assert by_cluster["b"]["target"]["kind"] == "Deployment" and by_cluster["b"]["target"]["name"] == "only-b"
        assert by_cluster["b"]["facts"]["workload.replicas"] == 1  # b's Deployment was read
        assert "workload.replicas" not in by_cluster["a"]["facts"]  # a has none: nothing observed there
        refused = await http.post("/api/v1/analyze", json=webhook("c", ns, pod_name))
        assert refused.status_code == 422 and refused.json()["field"] == "alerts[0].labels.cluster"

    # MCP's tools go the same way (the SDK's client over HTTP; anonymous is admin on this loopback app).
    async with (httpx2.AsyncClient(timeout=60) as mcp_http,
                Client(streamable_http_client(f"{base}/mcp", http_client=mcp_http)) as mcp):
        found = await mcp.call_tool("get_context", {**query, "cluster": "b"})
        assert not found.is_error and found.structured_content["found"] is True
        bad = await mcp.call_tool("get_context", {**query, "cluster": "c"})
        assert bad.is_error and "cluster" in bad.content[0].text and "'c'" in bad.content[0].text
        alert = {"labels": webhook("c", ns, pod_name)["alerts"][0]["labels"]}
        bad = await mcp.call_tool("analyze_alert", {"alerts": [alert]})
        assert bad.is_error and "alerts[0].labels.cluster" in bad.content[0].text


# -- the LLM's investigation tools read the incident's own cluster --------------------------------------------


async def test_the_investigation_tools_read_the_incidents_own_cluster(
    both: Clusters, kube_testenv: KubeTestEnv, spoke_b: Spoke
) -> None:
    ns = both.namespace
    for kube, image in ((both.a, "registry.local/inv:on-a"), (both.b, "registry.local/inv:on-b")):
        await kube.create("Deployment", ns, workload("Deployment", "inv", replicas=1,
                                                     containers=[container("app", image=image)]))
    peer = ToolCallingLLM().start()
    try:
        config = KubernautConfig(
            cluster_name="a", kubernetes={"kubeconfig": kube_testenv.admin_kubeconfig},
            fleet={"clusters": [{"name": "a", "kubeconfig": kube_testenv.admin_kubeconfig},
                                {"name": "b", "kubeconfig": spoke_b.kubeconfig}]},
            analysis={"llm_provider": "compatible", "llm_base_url": peer.base_url, "llm_model": "scripted",
                      "llm_max_retries": 0, "llm_tools": "on", "llm_max_repairs": 0,
                      # the decisions are not scripted (the rules decide): their refusals must not open the circuit
                      "llm_breaker_failures": 100})
        fleet = await asyncio.to_thread(Fleet.build, config, read_retries=0)
        # As the analysis deployment wires them: one investigation scope, the incident's cluster picks the client.
        llm = LLMAnalyzer(config.analysis, tools=default_registry(),
                          tool_scope=investigation_scope(config, ClusterConnection(None, "none", "unused"), fleet))
        target = ResourceRef(kind="Deployment", name="inv", namespace=ns)
        signals = [Signal(alert_id=1, alertname=ALERT, status="firing", namespace=ns,
                          starts_at=datetime.now(timezone.utc), am_fingerprint="f",
                          labels={"alertname": ALERT, "namespace": ns, "deployment": "inv"})]

        async def investigate(cluster: str | None) -> tuple[str, str]:
            """One incident on ``cluster``: the model reads Deployment inv; (the tool's outcome, what it showed)."""
            peer.requests.clear()
            peer.script(calls(("get_resource", {"kind": "Deployment", "name": "inv"})), "read it")
            analyzer = Analyzer(config.analysis, load_rules(), None, llm, cluster=cluster)
            result = await analyzer.analyze(signals, target)
            assert result.llm is not None and result.llm.tool_calls, result.fallback_reason
            shown = [m["content"] for m in peer.requests[1]["messages"] if m["role"] == "tool"]
            return result.llm.tool_calls[0].outcome, shown[0]

        outcome, shown = await investigate("b")
        assert outcome == "ok" and "registry.local/inv:on-b" in shown and "on-a" not in shown
        outcome, shown = await investigate("a")
        assert outcome == "ok" and "registry.local/inv:on-a" in shown and "on-b" not in shown
        # An incident whose cluster is not configured reads no cluster (never the home one).
        for cluster in ("c", None):
            outcome, shown = await investigate(cluster)
            assert outcome != "ok" and "registry.local/inv" not in shown
    finally:
        peer.stop()
