"""Kill the orchestrator replica mid-workflow on a real Ray cluster: Serve starts a new one, which picks
the workflow up from PostgreSQL and completes it exactly once against the real API server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from kubernaut.execution.kube import Kube
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    admin_fixture,
    create_ready,
    executor_role_fixture,
    wait_rollout,
    workload,
)
from tests.support.live_app import live_application
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s


@pytest_asyncio.fixture(loop_scope="session")
async def live_app(serve_app: Any, fresh_dsn: str, kube_testenv: Any, executor_role: Any
                   ) -> AsyncIterator[tuple[str, str]]:
    async with live_application(
        serve_app, "live", fresh_dsn, kube_testenv.executor_kubeconfig,
        orchestration={"stabilization_s": 0, "verify_interval_s": 0.5, "autonomy_min_cases": 0,
                       "autonomy_min_lower_bound": 0},
        work={"poll_interval_s": 0.5, "lease_s": 5},
    ) as base:
        yield base, fresh_dsn


def orchestrator_replicas() -> list[Any]:
    import ray

    return [a for a in ray.util.list_named_actors(all_namespaces=True)
            if "live" in a["name"] and "orchestrator" in a["name"] and a["name"].startswith("SERVE_REPLICA")]


async def test_killing_the_orchestrator_mid_workflow_completes_it_exactly_once(
    live_app: tuple[str, str], admin: Kube, kube_namespace: str
) -> None:
    import ray

    base, dsn = live_app
    await create_ready(admin, "Deployment", kube_namespace, workload("Deployment", "shop", replicas=1))
    db = await asyncpg.connect(dsn)
    try:
        target = {"kind": "Deployment", "name": "shop", "namespace": kube_namespace}
        incident = await db.fetchval(
            """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                      environment, priority, severity)
               VALUES ($1, 'Deployment', 'shop', $2, 'kubernetes', ARRAY['KubeHpaMaxedOut'], 'production', 'P1',
                       'high') RETURNING id""", uuid.uuid4().hex, kube_namespace)
        analysis = await db.fetchval(
            """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
               VALUES ($1, 'rules', 'scale_deployment', '{"replicas": 3}', $2::jsonb, 0.75, 'too few replicas')
               RETURNING id""", incident, __import__("json").dumps(target))
        await db.execute("INSERT INTO jobs (kind, ref_id) VALUES ('workflow', $1)", analysis)

        async def awaiting() -> int | None:
            return await db.fetchval("SELECT id FROM approvals WHERE incident_id = $1 AND status = 'pending'",
                                     incident)

        approval_id = await eventually(awaiting, timeout=60, what="the workflow waiting for approval")

        (victim,) = orchestrator_replicas()
        ray.kill(ray.get_actor(victim["name"], namespace=victim["namespace"]), no_restart=True)

        async with httpx.AsyncClient(timeout=10) as client:
            async def approved() -> bool:
                try:
                    # No authentication configured on this loopback app: the caller is the local principal;
                    # a body no longer names the approver (issue 12).
                    response = await client.post(f"{base}/api/v1/approvals/{approval_id}/approve",
                                                 json={"reason": "go"})
                except httpx.HTTPError:
                    return False
                return response.status_code == 200

            await eventually(approved, timeout=90, interval=1, what="approval through a new orchestrator replica")

        async def completed() -> bool:
            return await db.fetchval("SELECT phase FROM workflows WHERE incident_id = $1", incident) == "completed"

        await eventually(completed, timeout=120, what="the workflow completed by the new replica")
        assert [r["name"] for r in orchestrator_replicas()] != [victim["name"]]
        executed = await db.fetch(
            "SELECT * FROM actions WHERE incident_id = $1 AND NOT dry_run AND status = 'succeeded'", incident)
        assert len(executed) == 1  # exactly once
        deployment = await wait_rollout(admin, "Deployment", kube_namespace, "shop")
        assert deployment["spec"]["replicas"] == 3
    finally:
        await db.close()
