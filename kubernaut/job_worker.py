"""The loop that works off jobs inside a replica: claim due jobs of its kinds, run their handlers while
renewing their leases, record each outcome (done, rescheduled, retried with backoff, dead letter).

The queue itself (rows, leases, fencing, dead letters) is :mod:`kubernaut.storage.jobs`; which kinds exist
and which deployment claims each is :mod:`kubernaut.models.jobs`. A deployment starts its worker through
:meth:`kubernaut.serving.ReplicaBase._start_worker`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

from kubernaut.models.jobs import JobKind
from kubernaut.observability import metrics
from kubernaut.storage.jobs import (
    Job,
    LeaseLost,
    Reschedule,
    RetryLater,
    RetryPolicy,
    claim,
    complete,
    fail,
    hold,
    reap,
    renew,
    reschedule,
)

logger = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[None]]


class JobWorker:
    """Claims jobs of some kinds and runs them; lives inside one replica as a background task."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: Mapping[JobKind, Handler],
        *,
        owner: str,
        poll_interval_s: float,
        lease_s: float,
        max_attempts: int,
        batch_size: int,
        on_give_up: Callable[[Job, str], Awaitable[None]] | None = None,
        policies: Mapping[JobKind, RetryPolicy] | None = None,
        heartbeat_s: float | None = None,
        backoff_initial_s: float = 2.0,
        backoff_max_s: float = 300.0,
    ) -> None:
        self._pool = pool
        undeclared = [kind for kind in handlers if not isinstance(kind, JobKind)]
        if undeclared:  # fail closed: a kind no producer writes would wait forever
            raise TypeError(f"job kinds are JobKind members, not {undeclared}")
        self._handlers = dict(handlers)
        self.owner = owner
        self._poll = poll_interval_s
        self._lease = lease_s
        default = RetryPolicy(max_attempts, backoff_initial_s, backoff_max_s)
        self._policies = {kind: (policies or {}).get(kind, default) for kind in handlers}
        # Renew well before the lease runs out: a renewal that is late or fails once still leaves time.
        self._heartbeat_s = heartbeat_s if heartbeat_s is not None else lease_s / 3
        self._batch = batch_size
        self._on_give_up = on_give_up
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_reap = float("-inf")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"jobs:{self.owner}")

    def wake(self) -> None:
        self._wake.set()

    def policy(self, kind: JobKind) -> RetryPolicy:
        return self._policies[kind]

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
        """Up to ``batch_size`` jobs in flight; a finished one frees its slot for the next claim at once. (Claiming a
        batch and waiting for all of it made every job wait for the slowest of its batch: a burst of 600 analyses
        took 30 rounds of its slowest incident, bench/RESULTS.md.)"""
        kinds = list(self._handlers)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self._wake.set()  # a free slot: claim again

        try:
            while not self._stopping:
                self._wake.clear()  # before claiming: a wake-up from now on is seen by the wait below
                await self._reap(kinds)
                free = self._batch - len(running)
                claimed = []
                if free > 0:
                    try:
                        claimed = await claim(self._pool, kinds, self.owner, self._lease, free, self._policies)
                    except Exception:
                        logger.exception("claiming jobs failed; retrying")
                for job in claimed:
                    task = asyncio.get_running_loop().create_task(self._run_one(job))
                    running.add(task)
                    task.add_done_callback(finished)
                if claimed and len(claimed) == free:
                    continue  # there may be more
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
                except asyncio.TimeoutError:
                    pass
        finally:
            for task in list(running):  # stopping: the leases expire and another replica takes the jobs over
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def _reap(self, kinds: list[JobKind]) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_reap < self._poll:
            return
        self._last_reap = now
        try:
            dead = await reap(self._pool, kinds, self._policies)
        except Exception:
            logger.exception("reaping expired jobs failed; retrying at the next poll")
            return
        for job, error in dead:
            logger.error("job %s %s (id %d) is dead: %s", job.kind, job.ref_id, job.id, error)
            await self._gave_up(job, error)

    async def _gave_up(self, job: Job, error: str) -> None:
        metrics.job_dead_lettered(job.kind)
        if self._on_give_up is None:
            return
        try:
            await self._on_give_up(job, error)
        except Exception:
            logger.exception("give-up hook of job %s failed", job.id)

    async def _heartbeat(self, job: Job, work: asyncio.Task[None], lost: asyncio.Event) -> None:
        """Renew the lease while ``work`` runs; cancel it once the lease is no longer this holder's."""
        loop = asyncio.get_running_loop()
        renewed_at = loop.time()
        while True:
            await asyncio.sleep(self._heartbeat_s)
            try:
                held = await asyncio.wait_for(renew(self._pool, job, self.owner, self._lease),
                                              timeout=max(self._heartbeat_s, 0.1))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Keep trying while the lease may still be ours; past it, someone else may hold the job.
                logger.warning("renewing the lease of job %s failed", job.id, exc_info=True)
                held = loop.time() - renewed_at < self._lease
            else:
                if held:
                    renewed_at = loop.time()
            if not held:
                lost.set()
                work.cancel()
                return

    async def _run_one(self, job: Job) -> None:
        handler = self._handlers[job.kind]
        policy = self._policies[job.kind]
        lost = asyncio.Event()
        work = asyncio.get_running_loop().create_task(hold(job, handler))
        beat = asyncio.get_running_loop().create_task(self._heartbeat(job, work, lost))
        try:
            try:
                await asyncio.shield(work)
            finally:
                beat.cancel()
        except asyncio.CancelledError:
            if not lost.is_set() or not work.done():
                work.cancel()
                raise  # the worker is stopping
            self._lease_lost(job, "the heartbeat found the lease gone")
            return
        except LeaseLost as exc:
            self._lease_lost(job, str(exc))
            return
        except Reschedule as again:
            try:
                await reschedule(self._pool, job, self.owner, again.delay_s)
            except Exception:
                logger.exception("rescheduling job %s failed; its lease will expire", job.id)
            return
        except Exception as exc:  # a job must never kill the loop
            delay = exc.delay_s if isinstance(exc, RetryLater) and exc.delay_s is not None \
                else policy.backoff_s(job.attempts)
            message = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, RetryLater):
                logger.exception("job %s %s failed (attempt %d of %d)", job.kind, job.ref_id, job.attempts,
                                 policy.max_attempts)
            try:
                if await fail(self._pool, job, self.owner, message, delay, policy.max_attempts):
                    await self._gave_up(job, message)
            except Exception:
                logger.exception("recording failure of job %s failed; its lease will expire", job.id)
            return
        try:
            if not await complete(self._pool, job, self.owner):
                self._lease_lost(job, "completed after the lease was lost")
        except Exception:
            logger.exception("completing job %s failed; its lease will expire and it re-runs idempotently", job.id)

    def _lease_lost(self, job: Job, why: str) -> None:
        logger.warning("job %s %s (id %d): lease lost, stopped without writing (%s)", job.kind, job.ref_id,
                       job.id, why)
        metrics.job_lease_lost(job.kind)
