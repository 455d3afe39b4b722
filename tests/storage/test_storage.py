"""Storage against real PostgreSQL+pgvector: migrations, dedup under concurrency, the work queue, audit."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
import pytest

from kubernaut.config.settings import StorageConfig
from kubernaut.models.jobs import IncidentRef, JobKind, NotificationRef
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import TargetResolution
from kubernaut.processing.classification import classify
from kubernaut.storage import audit, incidents, jobs
from kubernaut.storage.database import Database
from kubernaut.storage.migrations import available_migrations, migrate

pytestmark = pytest.mark.integration


async def connect(dsn: str) -> Database:
    from pydantic import SecretStr

    return await Database.connect(StorageConfig(dsn=SecretStr(dsn), pool_max_size=10))


async def test_migrations_apply_once_even_when_replicas_start_together(fresh_dsn: str) -> None:
    databases = await asyncio.gather(*(connect(fresh_dsn) for _ in range(4)))
    try:
        async with databases[0].pool.acquire() as conn:
            versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
            assert versions == [v for v, _, _ in available_migrations()]
            assert await conn.fetchval("SELECT extname FROM pg_extension WHERE extname = 'vector'") == "vector"
            assert await migrate(conn) == []  # idempotent
    finally:
        await asyncio.gather(*(d.close() for d in databases))


def resolution(name: str) -> TargetResolution:
    return TargetResolution(target=ResourceRef(kind="Deployment", name=name, namespace="shop"), source="labels",
                            fingerprint=f"fp-{name}")


async def test_concurrent_alerts_for_one_workload_open_exactly_one_incident(fresh_dsn: str) -> None:
    database = await connect(fresh_dsn)
    try:
        now = datetime.now(timezone.utc)

        async def one(i: int) -> tuple[int, bool]:
            async with database.pool.acquire() as conn, conn.transaction():
                return await incidents.join_or_open(
                    conn, resolution("cart"), classify("shop-prod", None, "critical"), f"Alert{i % 3}", now
                )

        results = await asyncio.gather(*(one(i) for i in range(30)))
        assert len({incident_id for incident_id, _ in results}) == 1
        assert sum(1 for _, opened in results if opened) == 1
        row = await database.pool.fetchrow("SELECT * FROM incidents")
        assert row["occurrence_count"] == 30
        assert sorted(row["signals"]) == ["Alert0", "Alert1", "Alert2"]
        assert row["priority"] == "P0" and row["environment"] == "production"
    finally:
        await database.close()


async def test_jobs_are_claimed_once_and_an_expired_lease_is_taken_over(fresh_dsn: str) -> None:
    database = await connect(fresh_dsn)
    try:
        async with database.pool.acquire() as conn:
            for ref in range(10):
                assert await jobs.enqueue(conn, JobKind.ANALYZE, IncidentRef(incident_id=ref))
            assert not await jobs.enqueue(conn, JobKind.ANALYZE, IncidentRef(incident_id=3))  # once per (kind, ref)
        claims = await asyncio.gather(*(jobs.claim(database.pool, [JobKind.ANALYZE], f"r{i}", 0.5, 4)
                                        for i in range(5)))
        claimed = [job.ref_id for batch in claims for job in batch]
        assert sorted(claimed) == list(range(10))  # every job once, none twice

        # Replica r0 "dies" holding its jobs: after the lease they go to someone else.
        lost = claims[0] or next(c for c in claims if c)
        owner = next(f"r{i}" for i, c in enumerate(claims) if c == lost)

        async def retaken() -> list[jobs.Job]:
            return await jobs.claim(database.pool, [JobKind.ANALYZE], "survivor", 30, 10)

        deadline = asyncio.get_running_loop().time() + 10
        taken: list[jobs.Job] = []
        while not taken and asyncio.get_running_loop().time() < deadline:
            taken = [j for j in await retaken() if j.ref_id in {x.ref_id for x in lost}]
            await asyncio.sleep(0.1)
        assert {j.ref_id for j in taken} == {x.ref_id for x in lost}
        assert all(j.attempts == 2 for j in taken)
        # The dead replica cannot complete a job it no longer owns.
        await jobs.complete(database.pool, lost[0], owner)
        state = await database.pool.fetchval("SELECT state FROM jobs WHERE id = $1", lost[0].id)
        assert state == "running"
    finally:
        await database.close()


async def test_failed_jobs_back_off_and_give_up(fresh_dsn: str) -> None:
    database = await connect(fresh_dsn)
    try:
        async with database.pool.acquire() as conn:
            await jobs.enqueue(conn, JobKind.NOTIFY, NotificationRef(notification_id=1))
        (job,) = await jobs.claim(database.pool, [JobKind.NOTIFY], "r", 30, 1)
        assert not await jobs.fail(database.pool, job, "r", "boom", delay_s=60, max_attempts=2)
        assert await jobs.claim(database.pool, [JobKind.NOTIFY], "r", 30, 1) == []  # backing off
        await database.pool.execute("UPDATE jobs SET run_after = now()")
        (job,) = await jobs.claim(database.pool, [JobKind.NOTIFY], "r", 30, 1)
        assert await jobs.fail(database.pool, job, "r", "boom again", delay_s=0, max_attempts=2)
        row = await database.pool.fetchrow("SELECT state, last_error FROM jobs")
        assert row["state"] == "dead" and row["last_error"] == "boom again"
    finally:
        await database.close()


async def test_audit_chain_verifies_and_is_append_only(fresh_dsn: str) -> None:
    database = await connect(fresh_dsn)
    try:
        async def write(i: int) -> None:
            async with database.pool.acquire() as conn, conn.transaction():
                await audit.append(conn, "test", "event", None, {"i": i})

        await asyncio.gather(*(write(i) for i in range(20)))
        async with database.pool.acquire() as conn:
            assert await audit.verify_chain(conn) == (True, None)
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("UPDATE audit_events SET actor = 'mallory' WHERE id = 3")
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute("DELETE FROM audit_events")
            # Someone with superuser rights disables the trigger and edits a row: the chain says where.
            await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
            await conn.execute("""UPDATE audit_events SET detail = '{"i": 999}' WHERE id = 5""")
            assert await audit.verify_chain(conn) == (False, 5)
    finally:
        await database.close()


async def test_pgvector_similarity_uses_hnsw(fresh_dsn: str) -> None:
    import numpy as np

    database = await connect(fresh_dsn)
    try:
        async with database.pool.acquire() as conn:
            await conn.execute("CREATE TABLE v (id int, e vector(3))")
            await conn.executemany("INSERT INTO v VALUES ($1, $2)",
                                   [(i, np.array([1.0, i / 10, 0.0])) for i in range(10)])
            await conn.execute("CREATE INDEX ON v USING hnsw (e vector_cosine_ops)")
            nearest = await conn.fetchval("SELECT id FROM v ORDER BY e <=> $1 LIMIT 1", np.array([1.0, 0.31, 0.0]))
            assert nearest == 3
    finally:
        await database.close()
