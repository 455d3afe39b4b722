"""Fault injection under load, shared by the fault tests (tests/system/test_fault_injection*.py): a flow of webhooks
for one run, a live workflow seeded next to it, a replica killed, and the invariants every fault must keep —
acknowledged alerts stored, workflows settled, no step run twice, the workload changed exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx

from kubernaut.execution.kube import Kube
from kubernaut.orchestration.engine import TERMINAL
from tests.support.executor_harness import create_ready, wait_rollout, workload
from tests.support.live_app import fresh_database as fresh_database  # its importers' name (tests/system)
from tests.support.polling import eventually

APP = "chaos"
WAITING = ("awaiting_approval",)
WEBHOOKS, PERIOD_S, KILL_AFTER_S = 24, 0.25, 1.5


def replicas(deployment: str) -> list[dict[str, Any]]:
    import ray

    return [a for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith("SERVE_REPLICA") and f"{APP}#" in a["name"]
            and f"#{deployment}#" in a["name"]]


def kill_one(deployment: str) -> str:
    import ray

    victims = replicas(deployment)
    assert victims, f"no replica of {deployment} in {APP}"
    victim = victims[0]
    ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)
    return victim["name"]


def webhook(ns: str, run: str, seq: int) -> dict[str, Any]:
    # Four workloads that do not exist: incidents whose analysis acts on nothing real, quickly.
    alert = {"status": "firing",
             "labels": {"alertname": "KubePodCrashLooping", "namespace": ns, "container": "app",
                        "pod": f"web{seq % 4}-5f6d7c8b9-{run[:3]}{seq:02d}", "severity": "warning", "chaos": run},
             "annotations": {"summary": "fault injection"},
             "startsAt": "2026-11-26T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
    return {"version": "4", "status": "firing", "receiver": "chaos", "groupKey": f"{{}}:{{chaos=\"{run}-{seq}\"}}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0, "alerts": [alert]}


async def send_flow(base: str, ns: str, run: str) -> dict[int, int]:
    """Webhooks at a steady pace; each retried until acknowledged, as AlertManager retries a failed send.
    Returns seq → alerts acknowledged."""
    receipts: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        async def one(seq: int) -> None:
            await asyncio.sleep(seq * PERIOD_S)
            deadline = time.monotonic() + 90
            while True:
                try:
                    response = await client.post(f"{base}/api/v1/alerts", json=webhook(ns, run, seq))
                    if response.status_code == 200:
                        receipts[seq] = response.json()["accepted"]
                        return
                    # Under a fault only a 5xx is acceptable (AlertManager retries those; a 4xx it would
                    # drop): 503 from the gateway, or the proxy's 500 when the replica died mid-request.
                    assert response.status_code >= 500, response.text
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"webhook {seq} never acknowledged"
                await asyncio.sleep(0.5)

        await asyncio.gather(*(one(seq) for seq in range(WEBHOOKS)))
    return receipts


async def seed_live_workflow(db: asyncpg.Connection, ns: str) -> int:
    """A scale-up of the real Deployment `shop`, allowed by policy (staging, confidence 0.9)."""
    incident = await db.fetchval(
        """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                  environment, priority, severity)
           VALUES ($1, 'Deployment', 'shop', $2, 'kubernetes', ARRAY['KubeHpaMaxedOut'], 'staging', 'P2',
                   'warning') RETURNING id""", uuid.uuid4().hex, ns)
    analysis = await db.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
           VALUES ($1, 'rules', 'scale_deployment', '{"replicas": 2}', $2::jsonb, 0.9, 'too few replicas')
           RETURNING id""", incident, f'{{"kind": "Deployment", "name": "shop", "namespace": "{ns}"}}')
    await db.execute("INSERT INTO jobs (kind, ref_id) VALUES ('workflow', $1)", analysis)
    return incident


async def settled(db: asyncpg.Connection, ns: str, run: str) -> bool:
    """Every alert processed; every incident of the namespace has a workflow at rest."""
    unprocessed = await db.fetchval(
        "SELECT count(*) FROM alerts WHERE labels->>'chaos' = $1 AND processed_at IS NULL", run)
    if unprocessed:
        return False
    phases = await db.fetch(
        """SELECT i.id, w.phase FROM incidents i LEFT JOIN workflows w ON w.incident_id = i.id
           WHERE i.target_namespace = $1""", ns)
    return bool(phases) and all(r["phase"] in TERMINAL + WAITING for r in phases)


async def duplicated_steps(db: asyncpg.Connection) -> list[Any]:
    """Workflow steps that succeeded more than once: a retried attempt carries `-a<n>` on the same key."""
    return await db.fetch(
        """SELECT regexp_replace(idempotency_key, '-a[0-9]+$', '') AS step, count(*) AS n FROM actions
           WHERE status IN ('succeeded', 'dry_run') GROUP BY 1 HAVING count(*) > 1""")


async def assert_acknowledged_stored(db: asyncpg.Connection, ns: str, run: str, receipts: dict[int, int]) -> None:
    assert sorted(receipts) == list(range(WEBHOOKS)) and set(receipts.values()) == {1}
    # By the alert itself, not the request id: a webhook resent after a 5xx whose first try did commit is
    # acknowledged again as a redelivery of the stored alert (under the first request's id).
    stored = {r["pod"] for r in await db.fetch("SELECT labels->>'pod' AS pod FROM alerts WHERE labels->>'chaos' = $1",
                                               run)}
    lost = [seq for seq in receipts if webhook(ns, run, seq)["alerts"][0]["labels"]["pod"] not in stored]
    assert not lost, f"acknowledged but not stored: webhooks {lost}"


async def assert_invariants(db: asyncpg.Connection, ns: str, run: str, receipts: dict[int, int],
                            live_incident: int, admin: Kube) -> None:
    await assert_acknowledged_stored(db, ns, run, receipts)

    async def at_rest() -> bool:
        return await settled(db, ns, run)

    await eventually(at_rest, timeout=90, interval=0.5, what="every incident's workflow at rest")
    phase = await db.fetchval("SELECT phase FROM workflows WHERE incident_id = $1", live_incident)
    if phase != "completed":  # say why: the steps, the actions and the jobs of the live workflow
        steps = await db.fetch(
            """SELECT s.name, s.status, s.detail::text AS detail FROM workflow_steps s
               JOIN workflows w ON w.id = s.workflow_id WHERE w.incident_id = $1 ORDER BY s.id""", live_incident)
        actions = await db.fetch("SELECT action, status, dry_run, error FROM actions WHERE incident_id = $1",
                                 live_incident)
        jobs = await db.fetch("SELECT kind, state, attempts, last_error FROM jobs WHERE kind = 'workflow'")
        raise AssertionError(f"live workflow {phase}: steps {[tuple(r) for r in steps]}; "
                             f"actions {[tuple(r) for r in actions]}; workflow jobs {[tuple(r) for r in jobs]}")
    executed = await db.fetch("SELECT * FROM actions WHERE incident_id = $1 AND NOT dry_run AND status = 'succeeded'",
                              live_incident)
    assert [a["action"] for a in executed] == ["scale_deployment"]  # exactly once
    assert (await wait_rollout(admin, "Deployment", ns, "shop"))["spec"]["replicas"] == 2
    assert await duplicated_steps(db) == []
    dead = await db.fetch("SELECT kind, ref_id, last_error FROM jobs WHERE state = 'dead'")
    assert not dead, dead


async def run_case(chaos_app: tuple[str, str], admin: Kube, ns: str, fault: Any) -> None:
    base, dsn = chaos_app
    await create_ready(admin, "Deployment", ns, workload("Deployment", "shop", replicas=1))
    run = uuid.uuid4().hex[:10]
    flow = asyncio.create_task(send_flow(base, ns, run))
    db = await asyncpg.connect(dsn)
    try:
        live_incident = await seed_live_workflow(db, ns)
        await asyncio.sleep(KILL_AFTER_S)
        await fault()
        receipts = await flow
    finally:
        flow.cancel()
        db.terminate()  # its server may have been restarted under it (the PostgreSQL case)
    db = await asyncpg.connect(dsn)
    try:
        await assert_invariants(db, ns, run, receipts, live_incident, admin)
    finally:
        await db.close()
