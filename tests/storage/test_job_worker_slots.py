"""The job worker keeps up to ``batch_size`` jobs in flight and a finished job frees its slot at once: one slow job
does not hold back the jobs claimed with it (bench/RESULTS.md: a burst of analyses waited for the slowest of each
batch of 20). Real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from kubernaut.config.settings import StorageConfig
from kubernaut.job_worker import JobWorker
from kubernaut.models.jobs import JobKind
from kubernaut.storage import jobs
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Job
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

KIND = JobKind.NOTIFY


async def test_a_slow_job_does_not_hold_back_the_jobs_after_it(fresh_dsn: str) -> None:
    db = await Database.connect(StorageConfig(dsn=SecretStr(fresh_dsn), pool_max_size=10),
                                application_name="kubernaut-test")
    release = asyncio.Event()
    done: list[int] = []

    async def handler(job: Job) -> None:
        if job.ref_id == 1:
            await release.wait()  # the slow one: runs until the test lets it finish
        done.append(job.ref_id)

    worker = JobWorker(db.pool, {KIND: handler}, owner="replica-a", poll_interval_s=0.05, lease_s=30,
                       max_attempts=3, batch_size=2)
    try:
        async with db.pool.acquire() as conn:
            for ref_id in range(1, 7):
                await jobs.enqueue(conn, KIND, KIND.spec.payload.from_ref(ref_id))
        worker.start()
        # Two slots: the slow job keeps one, the five others pass through the other one after another.
        await eventually(lambda: _async(sorted(done) == [2, 3, 4, 5, 6]), timeout=10,
                         what="the other five jobs done while the slow one still runs")
        assert 1 not in done
        release.set()
        await eventually(lambda: _async(sorted(done) == [1, 2, 3, 4, 5, 6]), timeout=10, what="the slow job done")
        states = await db.pool.fetch("SELECT state FROM jobs")
        assert {r["state"] for r in states} == {"done"}, states
    finally:
        release.set()
        await worker.stop()
        await db.close()


async def _async(value: bool) -> bool:
    return value
