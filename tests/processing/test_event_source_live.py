"""Warning events → alerts → incidents against the real kube-apiserver: the Alert Processor (Serve's local
testing mode: the real replica class, in process) watches the events of a test namespace; the alerts are
committed once however often an event repeats and however many watchers there are, land on the owner
workload, and resolve themselves once the event stops occurring."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from kubernetes import client
from pydantic import SecretStr

from kubernaut.config import load_config
from kubernaut.config.settings import StorageConfig
from kubernaut.processing.events import RECEIVER, EventSource
from kubernaut.storage.database import Database, _init_connection
from tests.support.polling import eventually
from tests.support.workloads import pod_template, pods_of

pytestmark = pytest.mark.k8s


def now_ts() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def warning(core: client.CoreV1Api, namespace: str, pod: client.V1Pod, reason: str, message: str,
            type_: str = "Warning") -> str:
    name = f"{pod.metadata.name}.{uuid.uuid4().hex[:10]}"
    core.create_namespaced_event(namespace, {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "namespace": namespace,
                           "uid": pod.metadata.uid, "fieldPath": "spec.containers{main}"},
        "type": type_, "reason": reason, "message": message, "count": 1,
        "firstTimestamp": now_ts(), "lastTimestamp": now_ts(),
        "source": {"component": "kubelet", "host": pod.spec.node_name or "sim-node-0"},
    })
    return name


def web_pod(api: client.ApiClient, namespace: str) -> client.V1Pod:
    labels = {"app": "web"}
    client.AppsV1Api(api).create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(replicas=1, selector=client.V1LabelSelector(match_labels=labels),
                                     template=pod_template(labels))))
    name = pods_of(api, namespace, "app=web", 1)[0]
    return client.CoreV1Api(api).read_namespaced_pod(name, namespace)


@pytest_asyncio.fixture(loop_scope="session")
async def events_db(fresh_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    # The processor migrates the empty database; this connection only reads.
    database = await Database.connect(StorageConfig(dsn=SecretStr(fresh_dsn), pool_max_size=2))
    await database.close()
    conn = await asyncpg.connect(fresh_dsn)
    await _init_connection(conn)
    yield conn
    await conn.close()


@pytest_asyncio.fixture(loop_scope="session")
async def processor(fresh_dsn: str, events_db: asyncpg.Connection, kube_testenv: Any, kube_namespace: str
                    ) -> AsyncIterator[Callable[..., Any]]:
    """Start the Alert Processor with the event source on the test namespace (options per test)."""
    from ray import serve

    from kubernaut.processing.deployment import AlertProcessor

    started: list[Any] = []

    def start(**events: Any) -> Any:
        config = load_config({
            "cluster_name": "test",
            "storage": {"dsn": fresh_dsn},
            "kubernetes": {"kubeconfig": kube_testenv.admin_kubeconfig},
            "work": {"poll_interval_s": 0.5},
            "gateway": {"process_wait_s": 0},
            "processing": {"events": {"enabled": True, "namespaces": [kube_namespace], "sweep_interval_s": 0.5,
                                      **events}},
        })
        handle = serve.run(AlertProcessor.bind(config, None, None), name=f"events-{uuid.uuid4().hex[:8]}",
                           _local_testing_mode=True)
        started.append(handle)
        return handle

    yield start
    for handle in started:  # Local testing mode has no controller: run the shutdown hook Serve would call.
        await handle.__del__.remote()


async def event_alerts(db: asyncpg.Connection, alertname: str | None = None) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM alerts WHERE receiver = $1 AND ($2::text IS NULL OR alertname = $2) ORDER BY id",
        RECEIVER, alertname)


async def test_repeated_warning_events_are_one_alert_on_the_owner_workload(
        processor: Callable[..., Any], events_db: asyncpg.Connection, fresh_dsn: str, kube_api_client: client.ApiClient,
        kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api_client)
    pod = web_pod(kube_api_client, kube_namespace)
    processor()
    backoff = warning(core, kube_namespace, pod, "BackOff", "Back-off restarting failed container")

    async def processed() -> asyncpg.Record | None:
        rows = await event_alerts(events_db, "KubePodCrashLooping")
        return rows[0] if rows and rows[0]["incident_id"] else None

    alert = await eventually(processed, timeout=60, what="the BackOff event committed and processed")
    assert alert["status"] == "firing" and alert["labels"]["reason"] == "CrashLoopBackOff"
    assert alert["labels"]["pod"] == pod.metadata.name and alert["labels"]["source"] == "kubernetes-event"
    incident = await events_db.fetchrow("SELECT * FROM incidents WHERE id = $1", alert["incident_id"])
    # The processing path resolved the owner through the API: Pod → ReplicaSet → Deployment.
    assert (incident["target_kind"], incident["target_name"], incident["target_source"]) == \
        ("Deployment", "web", "kubernetes")
    assert alert["process_decision"]["chain"][-1] == "Deployment/web"

    # The same event occurs again (its count goes up), and the kubelet starts another Event object for it;
    # a Normal event and an unconfigured reason are no signals.
    core.patch_namespaced_event(backoff, kube_namespace, {"count": 5, "lastTimestamp": now_ts(),
                                                          "message": "Back-off restarting failed container (x5)"})
    warning(core, kube_namespace, pod, "BackOff", "Back-off restarting failed container")
    warning(core, kube_namespace, pod, "Pulled", "Container image already present", type_="Normal")
    warning(core, kube_namespace, pod, "SomethingElse", "not configured")
    # Events of one watch are handled in order: once this one is in, those before it were handled.
    warning(core, kube_namespace, pod, "FailedMount", "MountVolume.SetUp failed for volume \"cfg\"")

    async def barrier() -> list[asyncpg.Record]:
        rows = await event_alerts(events_db, "KubeContainerWaiting")
        return rows if rows and rows[0]["incident_id"] else []

    mount = (await eventually(barrier, timeout=60, what="the FailedMount alert"))[0]
    assert mount["incident_id"] == alert["incident_id"]  # another signal, same workload: the same incident
    assert [r["id"] for r in await event_alerts(events_db)] == [alert["id"], mount["id"]]

    # A second watcher (another replica) relists the same events: it commits nothing twice.
    second = await Database.connect(StorageConfig(dsn=SecretStr(fresh_dsn), pool_max_size=3))
    config = load_config({"processing": {"events": {"enabled": True, "namespaces": [kube_namespace]}}})
    source = EventSource(kube_api_client, second.pool, config.processing.events)
    try:
        source.start()
        await eventually(lambda: _tracked(source, 2), timeout=60, what="the second watcher caught up")
    finally:
        await source.stop()
        await second.close()
    assert source.committed == 0
    assert [r["id"] for r in await event_alerts(events_db)] == [alert["id"], mount["id"]]
    assert await events_db.fetchval("SELECT firing_alerts FROM incidents WHERE id = $1", alert["incident_id"]) == 2


async def _tracked(source: EventSource, count: int) -> bool:
    return len(source._tracked) >= count


async def test_a_quiet_event_alert_resolves_and_fires_again_when_it_recurs(
        processor: Callable[..., Any], events_db: asyncpg.Connection, kube_api_client: client.ApiClient,
        kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api_client)
    pod = web_pod(kube_api_client, kube_namespace)
    processor(resolve_after_s=8)
    name = warning(core, kube_namespace, pod, "BackOff", "Back-off restarting failed container")

    async def rows(status: str) -> list[asyncpg.Record]:
        found = await event_alerts(events_db, "KubePodCrashLooping")
        return [r for r in found if r["status"] == status and r["incident_id"]]

    firing = (await eventually(lambda: rows("firing"), timeout=60, what="the firing alert"))[0]
    assert firing["ends_at"] is not None and firing["ends_at"] > firing["starts_at"]
    # No new occurrence for resolve_after_s: a resolved alert with the same fingerprint and start.
    resolved = (await eventually(lambda: rows("resolved"), timeout=60, what="the synthetic resolution"))[0]
    assert (resolved["am_fingerprint"], resolved["starts_at"]) == (firing["am_fingerprint"], firing["starts_at"])
    assert await events_db.fetchval("SELECT status FROM incidents WHERE id = $1", firing["incident_id"]) == "resolved"

    # It occurs again: a new episode, starting at this occurrence.
    core.patch_namespaced_event(name, kube_namespace, {"count": 2, "lastTimestamp": now_ts()})

    async def refired() -> list[asyncpg.Record]:
        found = await rows("firing")
        return found if len(found) == 2 else []

    again = (await eventually(refired, timeout=60, what="the alert firing again"))[1]
    assert again["am_fingerprint"] == firing["am_fingerprint"] and again["starts_at"] > firing["starts_at"]
    assert await events_db.fetchval("SELECT status FROM incidents WHERE id = $1", again["incident_id"]) == "open"
    assert len(await event_alerts(events_db)) == 3


async def test_replicas_commit_once_and_a_new_replica_resolves_what_a_gone_one_left_firing(fresh_dsn: str) -> None:
    """Database only (no cluster): the per-fingerprint lock + idempotent insert across watchers."""
    database = await Database.connect(StorageConfig(dsn=SecretStr(fresh_dsn), pool_max_size=6))
    config = load_config({"processing": {"events": {"enabled": True, "resolve_after_s": 600}}}).processing.events
    clock = [datetime.now(timezone.utc)]
    replicas = [EventSource(None, database.pool, config, clock=lambda: clock[0]) for _ in range(3)]  # type: ignore[arg-type]
    a, b, c = replicas
    first = clock[0].strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {"metadata": {"name": "web-1.a", "namespace": "shop"}, "type": "Warning", "reason": "BackOff",
             "message": "Back-off restarting failed container", "count": 1,
             "involvedObject": {"kind": "Pod", "name": "web-5f6d7c8b9-abcde", "namespace": "shop", "uid": "u-1"},
             "firstTimestamp": first, "lastTimestamp": first}
    try:
        # Two watchers see the same event at the same moment, twice: one row.
        assert sorted(await asyncio.gather(*(r.handle(event) for r in (a, b, a, b)))) == [False, False, False, True]
        rows = await database.pool.fetch("SELECT * FROM alerts WHERE receiver = $1", RECEIVER)
        assert len(rows) == 1 and rows[0]["status"] == "firing" and rows[0]["namespace"] == "shop"
        assert (rows[0]["ends_at"] - rows[0]["starts_at"]).total_seconds() == 600

        # It occurs again five minutes later: the end moves, no new row.
        clock[0] += timedelta(minutes=5)
        later = clock[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert not await b.handle({**event, "count": 2, "lastTimestamp": later})
        ends = await database.pool.fetchval("SELECT ends_at FROM alerts WHERE receiver = $1", RECEIVER)
        assert ends == datetime.fromisoformat(later.replace("Z", "+00:00")) + timedelta(seconds=600)

        # Replicas a and b are gone; c starts, adopts the firing alert and resolves it once it is quiet.
        assert await c.adopt_firing() == 1
        clock[0] += timedelta(minutes=9)
        assert await c.resolve_quiet() == 0  # not yet: the repeat moved the end
        clock[0] += timedelta(minutes=2)
        assert await c.resolve_quiet() == 1 and await a.resolve_quiet() == 0
        resolved = await database.pool.fetchrow("SELECT * FROM alerts WHERE receiver = $1 AND status = 'resolved'",
                                                RECEIVER)
        assert resolved["starts_at"] == rows[0]["starts_at"] and resolved["ends_at"] == ends

        # Listing the old event again is no signal; a new occurrence is a new episode.
        assert not await c.handle({**event, "count": 2, "lastTimestamp": later})
        now = clock[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert await c.handle({**event, "count": 3, "lastTimestamp": now})
        statuses = await database.pool.fetch("SELECT status, starts_at FROM alerts WHERE receiver = $1 ORDER BY id",
                                             RECEIVER)
        assert [r["status"] for r in statuses] == ["firing", "resolved", "firing"]
        assert statuses[2]["starts_at"] == datetime.fromisoformat(now.replace("Z", "+00:00"))
    finally:
        await database.close()
