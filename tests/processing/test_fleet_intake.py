"""A fleet's alerts through the real intake and executor records (real PostgreSQL, no control plane): the cluster
label routes each alert, the same workload in two clusters is two incidents, an unknown cluster's incident is
stored and escalated (no analysis), and the executor's records, keys and budget are per cluster."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from kubernaut.cluster.fleet import Fleet
from kubernaut.config.settings import ExecutionConfig, KubernautConfig, ProcessingConfig
from kubernaut.execution import budget
from kubernaut.execution.pipeline import Executor
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from kubernaut.models.workflow import ActionRequest
from kubernaut.processing import intake
from kubernaut.processing.classification import classify
from kubernaut.processing.owners import OwnerResolver
from kubernaut.processing.routing import ClusterRouter
from kubernaut.storage import alerts
from kubernaut.storage import execution as records
from kubernaut.storage import fleet as fleet_store
from kubernaut.storage.alerts import insert_webhooks
from tests.support.executor_harness import seed_workflow
from tests.support.incident_history import connect

pytestmark = pytest.mark.integration


def _kubeconfig(path: Path) -> str:
    with socket.socket() as s:  # a port nothing listens on: these tests never reach an API server
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return str(path)


def _config(tmp_path: Path) -> KubernautConfig:
    return KubernautConfig(cluster_name="a", processing={"resolve_owners": False}, fleet={"clusters": [
        {"name": "a", "kubeconfig": _kubeconfig(tmp_path / "a")},
        {"name": "b", "kubeconfig": _kubeconfig(tmp_path / "b")}]})


def _webhook(clusters: list[str | None]) -> WebhookPayload:
    def labels(cluster: str | None) -> dict[str, str]:
        base = {"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web"}
        return base | ({"cluster": cluster} if cluster else {})

    return WebhookPayload.model_validate({
        "version": "4", "status": "firing", "receiver": "kubernaut", "groupKey": "{}:{}",
        "alerts": [{"status": "firing", "fingerprint": f"fp-{i}", "labels": labels(c),
                    "startsAt": "2026-12-05T08:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
                   for i, c in enumerate(clusters)]})


async def _process(pool, router: ClusterRouter) -> None:  # type: ignore[no-untyped-def]
    items = []
    for alert in await alerts.all_unprocessed(pool):
        signal, owners, unknown = router.route(alerts.to_signal(alert))
        items.append(intake.Enriched(signal=signal, resolution=await owners.resolve(signal.labels),
                                     classification=classify(signal.namespace, None, signal.raw_severity),
                                     request_id=alert.request_id, unknown_cluster=unknown))
    async with pool.acquire() as conn, conn.transaction():
        await alerts.lock_for_processing(conn, [i.signal.alert_id for i in items], skip_locked=False)
        await intake.process_batch(conn, items, [], ProcessingConfig())


async def test_the_same_workload_in_two_clusters_is_two_incidents_and_an_unknown_cluster_is_escalated(
    fresh_dsn: str, tmp_path: Path
) -> None:
    config = _config(tmp_path)
    router = ClusterRouter(config, OwnerResolver(None, "a", ttl_s=60, timeout_s=1), Fleet.build(config))
    db = await connect(fresh_dsn)
    try:
        await insert_webhooks(db.pool, [(_webhook(["a", "b", None, "c"]), "r1")])
        await _process(db.pool, router)
        rows = await db.pool.fetch(
            "SELECT id, cluster, fingerprint, phase, occurrence_count FROM incidents ORDER BY id")
        by_cluster = {r["cluster"]: r for r in rows}
        assert sorted(by_cluster) == ["a", "b", "c"] and len(rows) == 3
        assert by_cluster["a"]["occurrence_count"] == 2  # the alert without a cluster label is the home cluster's
        assert len({r["fingerprint"] for r in rows}) == 3
        analyzed = {r["ref_id"] for r in await db.pool.fetch("SELECT ref_id FROM jobs WHERE kind = 'analyze'")}
        assert analyzed == {by_cluster["a"]["id"], by_cluster["b"]["id"]}  # never the unknown cluster's
        c = by_cluster["c"]["id"]
        assert by_cluster["c"]["phase"] == "escalated"
        note = await db.pool.fetchrow("SELECT event, body FROM notifications WHERE incident_id = $1", c)
        assert note["event"] == "incident.escalated" and "'c'" in note["body"]
        audit = await db.pool.fetchval("SELECT detail->>'cluster' FROM audit_events WHERE incident_id = $1 "
                                       "AND event = 'incident.escalated'", c)
        assert audit == "c"
        decision = await db.pool.fetchval(
            "SELECT process_decision->>'unknown_cluster' FROM alerts WHERE incident_id = $1", c)
        assert decision.startswith("cluster 'c' (label cluster) is not configured")
    finally:
        await db.close()


def test_one_cluster_reads_no_cluster_label() -> None:
    config = KubernautConfig(cluster_name="local")
    home = OwnerResolver(None, "local", ttl_s=60, timeout_s=1)
    router = ClusterRouter(config, home, None)
    routed, owners, unknown = router.route(Signal(
        alert_id=1, alertname="X", status="firing", labels={"cluster": "elsewhere"}, am_fingerprint="f",
        starts_at="2026-12-05T08:00:00Z"))
    assert (routed.cluster, owners, unknown) == ("local", home, None)


async def test_executor_records_keys_and_budget_per_cluster(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        incident, workflow = await seed_workflow(db)
        live = ExecutionConfig(mode="live", max_mutations_per_window=1, max_mutations_per_namespace=10)
        target = ResourceRef(kind="Deployment", name="web", namespace="test")
        on_b = Executor(db, live, None, cluster="b", fleet_home="a", cluster_reason="test: no client")
        result = await on_b.execute(ActionRequest(workflow_id=workflow, incident_id=incident,
                                                  action="restart_deployment", target=target,
                                                  idempotency_key="fleet-b-1", dry_run=False, cluster="b"))
        row = await records.fetch(db.pool, result.action_id)
        assert (row.cluster, row.target_key) == ("b", "b@test:Deployment:web")
        # A live mutation on a counts against a's budget only.
        on_a = Executor(db, live, None, cluster="a", fleet_home="a")
        row_a, _ = await records.claim(db.pool, ActionRequest(
            workflow_id=workflow, incident_id=incident, action="restart_deployment", target=target,
            idempotency_key="fleet-a-1", dry_run=False, cluster="a"), dry_run=False, owner="t", lease_s=30, plan=[],
            target_key=on_a._key(target), cluster="a")
        assert row_a.target_key == "test:Deployment:web"  # the home cluster's keys are unchanged
        async with db.pool.acquire() as conn:
            await records.reserve_mutation(conn, row_a.id)
        for cluster, allowed in (("a", False), ("b", True), (None, False)):
            verdict = await budget.admit(db.pool, 0, action="restart_deployment", target_key="x", namespace="test",
                                         config=live, reserve=False, cluster=cluster)
            assert verdict.allowed is allowed, (cluster, verdict.reason)
    finally:
        await db.close()


async def test_what_worked_for_a_signature_per_cluster_and_across_the_fleet(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        incident, workflow = await seed_workflow(db)
        outcomes = [("a", "effective"), ("a", "effective"), ("b", "ineffective"), ("b", "effective"),
                    ("a", None)]  # the last one still pending: not counted
        for i, (cluster, verdict) in enumerate(outcomes):
            action = await db.pool.fetchval(
                "INSERT INTO actions (workflow_id, incident_id, action, target, idempotency_key, dry_run, status, "
                "cluster) VALUES ($1, $2, 'restart_deployment', '{}'::jsonb, $3, false, 'succeeded', $4) RETURNING id",
                workflow, incident, f"k{i}", cluster)
            await db.pool.execute(
                "INSERT INTO assessments (action_id, action, target, target_key, target_kind, signature, alertname, "
                "status, verdict, action_at, due_at, expires_at) VALUES ($1, 'restart_deployment', '{}'::jsonb, "
                "'k', 'Deployment', 'KubePodCrashLooping:Deployment', 'KubePodCrashLooping', $2, $3, now(), now(), "
                "now())", action, "done" if verdict else "pending", verdict)
        rows = await fleet_store.outcomes_by_cluster(db.pool, "KubePodCrashLooping:Deployment")
        got = {(r.cluster, r.assessed, r.effective, r.ineffective) for r in rows}
        assert got == {("a", 2, 2, 0), ("b", 2, 1, 1), (None, 4, 3, 1)}
    finally:
        await db.close()
