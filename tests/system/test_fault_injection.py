"""Fault injection on real components: while webhooks flow and a live workflow runs against the test control
plane, one replica of a deployment is killed (``ray.kill``, the process dies as with kill -9), or the
application's PostgreSQL (its own embedded server, so no other test's database goes down) is stopped and
restarted, or the notification sink fails. After each fault: every
acknowledged alert is in the database, every incident's workflow reaches a terminal or waiting phase, no
workflow step ran twice (actions' idempotency keys), and the live workflow resumes and changes the
workload exactly once. One application serves every case; one fault at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
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
from tests.support.fault_injection import (
    APP,
    kill_one,
    replicas,
    run_case,
)
from tests.support.live_app import live_application
from tests.support.polling import eventually
from tests.support.sinks import HttpSink

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(600)]

# Serve deployment names (the @serve.deployment names) whose replica is killed, one per case.
DEPLOYMENTS = ["gateway", "processor", "analysis", "orchestrator", "executor", "effectiveness", "notifications"]


@pytest.fixture(scope="module")
def flaky_sink() -> Iterator[HttpSink]:
    sink = HttpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def chaos_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The chaos application's own embedded PostgreSQL (its data directory): the PostgreSQL case stops it."""
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    data_dir = tmp_path_factory.mktemp("chaos-pg") / "data"
    ensure_embedded_server(data_dir)
    yield data_dir
    stop_embedded_server(data_dir)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def chaos_app(serve_app: Any, chaos_pg: Path, kube_testenv: Any, executor_role: Any, flaky_sink: HttpSink
                    ) -> AsyncIterator[tuple[str, str]]:
    from kubernaut.storage.embedded import ensure_embedded_server

    dsn = await asyncio.to_thread(ensure_embedded_server, chaos_pg)
    async with live_application(
        serve_app, APP, dsn, kube_testenv.executor_kubeconfig,
        orchestration={"stabilization_s": 0, "verify_interval_s": 0.5, "autonomy_min_cases": 0,
                       "autonomy_min_lower_bound": 0, "cooldown_s": 0},
        work={"poll_interval_s": 0.5, "lease_s": 5},
        gateway={"rate_limit_per_s": 0},
        notifications={"urls": [flaky_sink.apprise_url], "timeout_s": 5},
    ) as url:
        yield url, dsn


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
async def test_killing_a_replica_under_load_loses_nothing_and_repeats_nothing(
    chaos_app: tuple[str, str], admin: Kube, kube_namespace: str, deployment: str
) -> None:
    before: list[str] = []

    async def fault() -> None:
        before.append(await asyncio.to_thread(kill_one, deployment))

    await run_case(chaos_app, admin, kube_namespace, fault)

    # Serve replaced the replica (min_replicas 1): the deployment works again through a new one.
    async def replaced() -> bool:
        names = [r["name"] for r in await asyncio.to_thread(replicas, deployment)]
        return bool(names) and before[0] not in names

    await eventually(replaced, timeout=60, what=f"a new {deployment} replica")


async def reachable(dsn: str) -> bool:
    try:
        connection = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    await connection.close()
    return True


async def test_postgres_stopped_and_restarted_under_load_loses_nothing(
    chaos_app: tuple[str, str], chaos_pg: Path, admin: Kube, kube_namespace: str
) -> None:
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    dsn = chaos_app[1]

    async def fault() -> None:
        assert await asyncio.to_thread(stop_embedded_server, chaos_pg)
        assert not await reachable(dsn), "PostgreSQL still answers: the fault did not happen"
        await asyncio.sleep(3)
        assert await asyncio.to_thread(ensure_embedded_server, chaos_pg) == dsn  # same address again
        assert await reachable(dsn)

    await run_case(chaos_app, admin, kube_namespace, fault)


async def test_a_failing_notification_sink_delays_notifications_but_loses_none(
    chaos_app: tuple[str, str], admin: Kube, kube_namespace: str, flaky_sink: HttpSink
) -> None:
    refused_before = flaky_sink.refused
    # Failing from the start: on a warm app the first incidents are notified within a second, before a fault
    # injected mid-flow would begin. It refuses until it has refused a delivery, then a little longer.
    flaky_sink.fail_next = 10**6

    async def fault() -> None:
        async def refusing() -> bool:
            return flaky_sink.refused > refused_before

        await eventually(refusing, timeout=60, interval=0.2, what="a delivery attempt refused by the sink")
        await asyncio.sleep(2)
        flaky_sink.fail_next = 0

    try:
        await run_case(chaos_app, admin, kube_namespace, fault)
    finally:
        flaky_sink.fail_next = 0
    db = await asyncpg.connect(chaos_app[1])
    try:
        async def delivered() -> bool:
            statuses = [r["status"] for r in await db.fetch(
                """SELECT n.status FROM notifications n JOIN incidents i ON i.id = n.incident_id
                   WHERE i.target_namespace = $1""", kube_namespace)]
            assert "failed" not in statuses, statuses
            return bool(statuses) and set(statuses) <= {"sent"}

        await eventually(delivered, timeout=90, interval=1,
                         what="every notification delivered after the sink recovered")
        retried = await db.fetchval(
            """SELECT count(*) FROM notifications n JOIN incidents i ON i.id = n.incident_id
               WHERE i.target_namespace = $1 AND n.attempts > 1""", kube_namespace)
        assert retried > 0, "no notification of this case was retried: the refused delivery was not one of them"
    finally:
        await db.close()
