"""The durable work queue between deployments, and the loop that consumes it inside a replica.

A hand-off is a ``jobs`` row written in the same transaction as the producer's result
(transactional outbox), so nothing acknowledged is lost. Consumers claim rows with
``FOR UPDATE SKIP LOCKED`` and a lease: if a replica dies, its lease expires and another takes over.
Handle calls (``kick``) only wake consumers early; correctness never depends on them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    ref_id: int
    attempts: int


class Reschedule(Exception):
    """Not a failure: the job waits (approval, stabilization) and runs again after ``delay_s``."""

    def __init__(self, delay_s: float, why: str = "") -> None:
        super().__init__(why or f"again in {delay_s:.1f}s")
        self.delay_s = delay_s


class RetryLater(Exception):
    """A transient failure: the job is retried after ``delay_s`` (counts as an attempt)."""

    def __init__(self, message: str, delay_s: float = 5.0) -> None:
        super().__init__(message)
        self.delay_s = delay_s


async def enqueue(conn: asyncpg.Connection, kind: str, ref_id: int, delay_s: float = 0.0) -> bool:
    """Add a job once per (kind, ref_id); True if it is new. Call inside the producer's transaction."""
    row = await conn.fetchrow(
        """INSERT INTO jobs (kind, ref_id, run_after) VALUES ($1, $2, now() + make_interval(secs => $3))
           ON CONFLICT (kind, ref_id) DO NOTHING RETURNING id""",
        kind, ref_id, delay_s,
    )
    return row is not None


async def requeue(conn: asyncpg.Connection, kind: str, ref_id: int) -> None:
    """Run a job again (e.g. re-analysis when a new signal joins); a running one finishes first."""
    await conn.execute(
        """INSERT INTO jobs (kind, ref_id) VALUES ($1, $2)
           ON CONFLICT (kind, ref_id) DO UPDATE SET state = 'pending', attempts = 0, run_after = now(),
               updated_at = now() WHERE jobs.state IN ('done', 'failed')""",
        kind, ref_id,
    )


async def wake(conn: asyncpg.Connection | asyncpg.Pool, kind: str, ref_id: int) -> None:
    """Make a job due now (e.g. an approval arrived); creates it if missing. A running job is left alone:
    it reschedules itself soon enough."""
    await conn.execute(
        """INSERT INTO jobs (kind, ref_id) VALUES ($1, $2)
           ON CONFLICT (kind, ref_id) DO UPDATE SET run_after = now(), updated_at = now(),
               state = CASE WHEN jobs.state = 'running' THEN jobs.state ELSE 'pending' END,
               attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END""",
        kind, ref_id,
    )


async def reschedule(pool: asyncpg.Pool, job: Job, owner: str, delay_s: float) -> None:
    await pool.execute(
        """UPDATE jobs SET state = 'pending', attempts = 0, lease_owner = NULL, lease_until = NULL,
                  run_after = LEAST(run_after, now() + make_interval(secs => $3)), updated_at = now()
           WHERE id = $1 AND lease_owner = $2""",
        job.id, owner, delay_s,
    )


async def claim(pool: asyncpg.Pool, kinds: list[str], owner: str, lease_s: float, limit: int) -> list[Job]:
    rows = await pool.fetch(
        # run_after = infinity while running: a wake() during the run lowers it, and a Reschedule
        # then runs the job again at once instead of after its delay.
        """UPDATE jobs SET state = 'running', lease_owner = $2, run_after = 'infinity',
                  lease_until = now() + make_interval(secs => $3), attempts = attempts + 1, updated_at = now()
           WHERE id IN (
               SELECT id FROM jobs
               WHERE kind = ANY($1::text[])
                 AND ((state = 'pending' AND run_after <= now()) OR (state = 'running' AND lease_until < now()))
               ORDER BY run_after, id LIMIT $4 FOR UPDATE SKIP LOCKED)
           RETURNING id, kind, ref_id, attempts""",
        kinds, owner, lease_s, limit,
    )
    return [Job(r["id"], r["kind"], r["ref_id"], r["attempts"]) for r in rows]


async def complete(conn: asyncpg.Connection | asyncpg.Pool, job: Job, owner: str) -> None:
    await conn.execute(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, updated_at = now() "
        "WHERE id = $1 AND lease_owner = $2",
        job.id, owner,
    )


async def fail(pool: asyncpg.Pool, job: Job, owner: str, error: str, delay_s: float, max_attempts: int) -> bool:
    """Record a failure; retry with backoff until ``max_attempts``. True when the job is given up."""
    final = job.attempts >= max_attempts
    await pool.execute(
        """UPDATE jobs SET state = $3, last_error = $4, lease_owner = NULL, lease_until = NULL,
                  run_after = now() + make_interval(secs => $5), updated_at = now()
           WHERE id = $1 AND lease_owner = $2""",
        job.id, owner, "failed" if final else "pending", error[:2000], delay_s,
    )
    return final


def replica_identity(prefix: str) -> str:
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


Handler = Callable[[Job], Awaitable[None]]


class JobWorker:
    """Claims jobs of some kinds and runs them; lives inside one replica as a background task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: dict[str, Handler],
        *,
        owner: str,
        poll_interval_s: float,
        lease_s: float,
        max_attempts: int,
        batch_size: int,
        on_give_up: Callable[[Job, str], Awaitable[None]] | None = None,
    ) -> None:
        self._pool = pool
        self._handlers = handlers
        self.owner = owner
        self._poll = poll_interval_s
        self._lease = lease_s
        self._max_attempts = max_attempts
        self._batch = batch_size
        self._on_give_up = on_give_up
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"jobs:{self.owner}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while not self._stopping:
            try:
                jobs = await claim(self._pool, list(self._handlers), self.owner, self._lease, self._batch)
            except Exception:
                logger.exception("claiming jobs failed; retrying")
                jobs = []
            if jobs:
                await asyncio.gather(*(self._run_one(job) for job in jobs))
                continue  # there may be more
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def _run_one(self, job: Job) -> None:
        handler = self._handlers[job.kind]
        try:
            await handler(job)
        except asyncio.CancelledError:
            raise
        except Reschedule as again:
            try:
                await reschedule(self._pool, job, self.owner, again.delay_s)
            except Exception:
                logger.exception("rescheduling job %s failed; its lease will expire", job.id)
            return
        except Exception as exc:  # a job must never kill the loop
            delay = exc.delay_s if isinstance(exc, RetryLater) else min(300.0, 2.0 ** job.attempts)
            message = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, RetryLater):
                logger.exception("job %s %s failed (attempt %d)", job.kind, job.ref_id, job.attempts)
            try:
                gave_up = await fail(self._pool, job, self.owner, message, delay, self._max_attempts)
                if gave_up and self._on_give_up is not None:
                    await self._on_give_up(job, message)
            except Exception:
                logger.exception("recording failure of job %s failed; its lease will expire", job.id)
            return
        try:
            await complete(self._pool, job, self.owner)
        except Exception:
            logger.exception("completing job %s failed; its lease will expire and it re-runs idempotently", job.id)
