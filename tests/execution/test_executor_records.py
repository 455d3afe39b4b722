"""The executor's PostgreSQL side on the embedded server (no cluster): leases that survive a dead
replica, budget admission under concurrency, cooldown, and the action record's life cycle."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from kubernaut.config.settings import ExecutionConfig, StorageConfig
from kubernaut.execution import budget, locks
from kubernaut.models.resource import ResourceRef
from kubernaut.models.workflow import ActionRequest
from kubernaut.storage import execution as records
from kubernaut.storage.database import Database
from tests.support.polling import eventually

TARGET = ResourceRef(kind="Deployment", name="web", namespace="shop")


@pytest_asyncio.fixture(loop_scope="session")
async def db(fresh_dsn: str) -> AsyncIterator[Database]:
    database = await Database.connect(StorageConfig(dsn=fresh_dsn, pool_max_size=10))
    yield database
    await database.close()


def request(key: str | None = None, target: ResourceRef = TARGET, action: str = "scale_deployment",
            dry_run: bool = False) -> ActionRequest:
    # workflow/incident rows are not needed here: the columns are nullable foreign keys.
    return ActionRequest.model_construct(workflow_id=None, incident_id=None, action=action, target=target,
                                         parameters={"replicas": 2}, idempotency_key=key or uuid.uuid4().hex,
                                         dry_run=dry_run, inverse_of=None)


async def test_lock_is_exclusive_and_expires_when_its_holder_dies(db: Database) -> None:
    pool = db.pool
    assert await locks.try_acquire(pool, TARGET.key, action_id=None, action="a", owner="r1", ttl_s=1)
    assert not await locks.try_acquire(pool, TARGET.key, action_id=None, action="b", owner="r2", ttl_s=10)
    holder = await locks.holder(pool, TARGET.key)
    assert holder is not None and holder.owner == "r1" and holder.action == "a"

    async def taken_over() -> bool:  # r1 never renews: its lease runs out and r2 may take the target
        return await locks.try_acquire(pool, TARGET.key, action_id=None, action="b", owner="r2", ttl_s=10)

    await eventually(taken_over, timeout=10, what="the dead holder's lease to expire")
    assert not await locks.renew(pool, TARGET.key, "r1", 10)  # the dead replica cannot renew someone else's lease
    await locks.release(pool, TARGET.key, "r1")  # nor release it
    assert (await locks.holder(pool, TARGET.key)).owner == "r2"
    await locks.release(pool, TARGET.key, "r2")
    assert await locks.holder(pool, TARGET.key) is None


async def test_target_lock_waits_then_raises_and_renews_while_held(db: Database) -> None:
    pool = db.pool
    renewed = asyncio.Event()

    async def on_renew() -> None:
        renewed.set()

    async with locks.target_lock(pool, TARGET.key, action_id=None, action="drain", owner="r1", ttl_s=0.6, wait_s=0,
                                 on_renew=on_renew):
        await asyncio.wait_for(renewed.wait(), timeout=5)  # renewed at a third of the TTL
        try:
            async with locks.target_lock(pool, TARGET.key, action_id=None, action="x", owner="r2", ttl_s=5, wait_s=0.3):
                raise AssertionError("a second holder got in")
        except locks.LockBusy as busy:
            assert busy.holder is not None and busy.holder.action == "drain"
        # Held far beyond its TTL thanks to renewals.
        holder = await locks.holder(pool, TARGET.key)
        assert holder is not None and holder.owner == "r1"
    assert await locks.holder(pool, TARGET.key) is None


async def test_budget_admission_is_atomic_across_concurrent_replicas(db: Database) -> None:
    config = ExecutionConfig(max_mutations_per_window=3, max_mutations_per_namespace=100)
    rows = [(await records.claim(db.pool, request(), dry_run=False, owner="r", lease_s=30, plan=[]))[0]
            for _ in range(8)]
    verdicts = await asyncio.gather(*(budget.admit(db.pool, row.id, action="scale_deployment",
                                                   target_key=TARGET.key, namespace="shop", config=config)
                                      for row in rows))
    assert sum(v.allowed for v in verdicts) == 3
    assert all("max_mutations_per_window=3" in v.reason for v in verdicts if not v.allowed)
    admitted = [row for row, v in zip(rows, verdicts, strict=True) if v.allowed]
    await budget.give_back(db.pool, admitted[0].id)
    late = await budget.admit(db.pool, rows[-1].id, action="scale_deployment", target_key=TARGET.key,
                              namespace="shop", config=config)
    assert late.allowed  # a returned slot is available again


async def test_dry_run_budget_checks_do_not_reserve(db: Database) -> None:
    config = ExecutionConfig(max_mutations_per_window=1)
    row, _ = await records.claim(db.pool, request(), dry_run=True, owner="r", lease_s=30, plan=[])
    for _ in range(3):
        assert (await budget.admit(db.pool, row.id, action="scale_deployment", target_key=TARGET.key,
                                   namespace="shop", config=config, reserve=False)).allowed
    assert (await budget.usage(db.pool, config))["mutations_in_window"] == 0


async def test_node_budget_counts_cordoned_and_in_flight_nodes(db: Database) -> None:
    config = ExecutionConfig(max_nodes_unavailable=2)
    node = ResourceRef(kind="Node", name="n2")
    other, _ = await records.claim(db.pool, request(target=ResourceRef(kind="Node", name="n3"), action="drain_node"),
                                   dry_run=False, owner="r", lease_s=30, plan=[])
    await db.pool.execute("UPDATE actions SET mutating = true WHERE id = $1", other.id)
    mine, _ = await records.claim(db.pool, request(target=node, action="cordon_node"), dry_run=False, owner="r",
                                  lease_s=30, plan=[])
    verdict = await budget.admit(db.pool, mine.id, action="cordon_node", target_key=node.key, namespace=None,
                                 config=config, unavailable_nodes={"n1"}, node="n2")
    assert not verdict.allowed and "n1, n3" in verdict.reason
    verdict = await budget.admit(db.pool, mine.id, action="cordon_node", target_key=node.key, namespace=None,
                                 config=config, unavailable_nodes={"n2"}, node="n2")
    assert verdict.allowed  # the target itself being cordoned already does not count against it


async def test_cooldown_counts_only_live_mutations(db: Database) -> None:
    row, _ = await records.claim(db.pool, request(), dry_run=False, owner="r", lease_s=30, plan=[])
    assert await budget.cooldown_left(db.pool, TARGET.key, "scale_deployment", 300) == 0
    await db.pool.execute("UPDATE actions SET mutating = true WHERE id = $1", row.id)
    await records.finish(db.pool, row.id, status="succeeded", stage="done", message="ok", owner="r")
    left = await budget.cooldown_left(db.pool, TARGET.key, "scale_deployment", 300)
    assert 290 < left <= 300
    assert await budget.cooldown_left(db.pool, TARGET.key, "rollout_restart", 300) == 0
    assert await budget.cooldown_left(db.pool, TARGET.key, "scale_deployment", 0) == 0


async def test_a_record_is_claimed_once_and_finished_once(db: Database) -> None:
    key = uuid.uuid4().hex
    row, new = await records.claim(db.pool, request(key), dry_run=False, owner="r1", lease_s=30, plan=["x"])
    again, new_again = await records.claim(db.pool, request(key), dry_run=False, owner="r2", lease_s=30, plan=[])
    assert new and not new_again and again.id == row.id and again.status == "running"
    assert await records.renew(db.pool, row.id, "r1", 30)
    assert not await records.renew(db.pool, row.id, "r2", 30)
    assert await records.finish(db.pool, row.id, status="succeeded", stage="done", message="m", owner="r2") is None
    done = await records.finish(db.pool, row.id, status="succeeded", stage="done", message="m", owner="r1",
                                inverse={"action": "scale_deployment"})
    assert done is not None and done.status == "succeeded" and done.lease_owner is None
    result = records.to_result(done, "hint")
    assert result.inverse == {"action": "scale_deployment"} and result.verification == "hint"
    assert await records.finish(db.pool, row.id, status="failed", stage="x", message="late") is None


async def test_an_expired_running_record_is_interrupted_never_rerun(db: Database) -> None:
    row, _ = await records.claim(db.pool, request(), dry_run=False, owner="dead", lease_s=30, plan=[])
    assert await records.interrupt_if_expired(db.pool, row.id) is None  # lease still valid
    await db.pool.execute("UPDATE actions SET lease_until = now() - interval '1 second', mutating = true "
                          "WHERE id = $1", row.id)
    interrupted = await records.interrupt_if_expired(db.pool, row.id)
    assert interrupted is not None and interrupted.status == "failed"
    assert "may or may not have been applied" in interrupted.result["message"]
    events = [r["event"] for r in await db.pool.fetch("SELECT event FROM audit_events")]
    assert events == ["action.interrupted"]


async def test_a_database_hiccup_before_sending_is_retryable_and_a_bug_is_not(db: Database, monkeypatch) -> None:
    """A transient storage error before anything reached an API server changed nothing: the result says
    retryable, so the workflow reschedules the step instead of failing the remediation (engine.py). Any
    other unexpected error stays a final failure."""
    import asyncpg

    from kubernaut.execution import pipeline

    executor = pipeline.Executor(db, ExecutionConfig(mode="live"), None, cluster_reason="test: no cluster")
    real_update = records.update

    def failing_once(error: Exception):
        calls = {"n": 0}

        async def update(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 1:
                raise error
            return await real_update(*args, **kwargs)
        return update

    monkeypatch.setattr(pipeline.records, "update", failing_once(asyncpg.PostgresConnectionError("connection lost")))
    result = await executor.execute(request())
    assert result.status == "failed" and result.retryable, result
    assert "PostgresConnectionError" in (result.error or "")

    monkeypatch.setattr(pipeline.records, "update", failing_once(KeyError("a bug")))
    result = await executor.execute(request())
    assert result.status == "failed" and not result.retryable, result
