"""The durable work queue between deployments: job rows, leases, fencing and dead letters. The loop that
consumes it inside a replica is :mod:`kubernaut.job_worker`.

A hand-off is a ``jobs`` row written in the same transaction as the producer's result
(transactional outbox), so nothing acknowledged is lost. Consumers claim rows with
``FOR UPDATE SKIP LOCKED`` and a lease: if a replica dies, its lease expires and another takes over.
Which kinds exist, who writes and who claims each, and what its ``ref_id`` refers to is declared in
:mod:`kubernaut.models.jobs`; the functions here take a :class:`JobKind` and its typed payload. Handle
calls (``wake``) only wake consumers early; correctness never depends on them.

Leases hold while their holder works: the job worker renews a job's lease every ``heartbeat_s`` (a
fraction of the lease) and cancels the handler when a renewal finds the lease gone. Each claim gets a
fresh ``lease_token``; a handler's writes call :func:`fence` inside their transaction, which locks the
job row (``FOR KEY SHARE``: a claimer's ``FOR UPDATE SKIP LOCKED`` passes it by) and refuses the write
with :class:`LeaseLost` unless the token is still this claim's and the lease has not lapsed. So a holder
that stalled past its lease (a paused process, a partition) cannot write after a successor took over,
and no successor can take over in the middle of a holder's write.

A job that fails ``max_attempts`` times in a row (exceptions, or leases that expired because its holder
died) is a dead letter: ``state = 'dead'``, listed at ``GET /api/v1/jobs?state=dead``, counted in
``kubernaut_jobs_dead_lettered`` and replayed with :func:`retry` (``POST /api/v1/jobs/{id}/retry``).
"""

from __future__ import annotations

import contextvars
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.models.jobs import JobKind, JobPayload
from kubernaut.observability import metrics
from kubernaut.storage import audit

STATES = ("pending", "running", "done", "dead")


P = TypeVar("P", bound=JobPayload)


@dataclass(frozen=True)
class Job:
    id: int
    kind: JobKind
    ref_id: int
    attempts: int
    token: uuid.UUID | None = None  # this claim's lease token (None: not claimed through claim())

    def payload(self, model: type[P]) -> P:
        """What the job refers to, as ``model``; refused unless ``model`` is the kind's declared payload."""
        if self.kind.spec.payload is not model:
            raise TypeError(f"{self.kind} jobs carry {self.kind.spec.payload.__name__}, not {model.__name__}")
        return model.from_ref(self.ref_id)


def _checked(kind: JobKind, payload: JobPayload) -> int:
    """The ``ref_id`` to store, once ``payload`` is what ``kind`` declares (fail closed on a mix-up)."""
    if not isinstance(kind, JobKind):
        raise TypeError(f"job kinds are JobKind members, not {kind!r}")
    if type(payload) is not kind.spec.payload:
        raise TypeError(f"{kind} jobs carry {kind.spec.payload.__name__}, not {type(payload).__name__}")
    return payload.ref_id


def _job(row: asyncpg.Record, token: uuid.UUID | None = None) -> Job:
    return Job(row["id"], JobKind(row["kind"]), row["ref_id"], row["attempts"], token)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a job kind is tried and how long it waits between failures (exponential backoff)."""

    max_attempts: int = 5
    backoff_initial_s: float = 2.0
    backoff_max_s: float = 300.0

    def backoff_s(self, attempts: int) -> float:
        """Wait after the ``attempts``-th failure: initial, twice, four times … capped at the maximum."""
        return min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** min(max(attempts - 1, 0), 60))


class Reschedule(Exception):
    """Not a failure: the job waits (approval, stabilization) and runs again after ``delay_s``."""

    def __init__(self, delay_s: float, why: str = "") -> None:
        super().__init__(why or f"again in {delay_s:.1f}s")
        self.delay_s = delay_s


class RetryLater(Exception):
    """A transient failure: the job is retried after ``delay_s`` (the kind's backoff when None); counts as an
    attempt."""

    def __init__(self, message: str, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class LeaseLost(Exception):
    """This holder's lease on the job is gone (expired, or another replica claimed the job): stop, write
    nothing. The worker leaves the job row to its new holder."""


class JobStateError(ValueError):
    """A replay that cannot be done (unknown job, or one that is not dead)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Lease:
    job_id: int
    token: uuid.UUID


# The lease of the job whose handler runs in this task (set by hold(); inherited by tasks it starts).
_current_lease: contextvars.ContextVar[_Lease | None] = contextvars.ContextVar("kubernaut_job_lease", default=None)


async def fence(conn: asyncpg.Connection) -> None:
    """Refuse this transaction's writes unless the current job's lease is still held; a no-op outside a job.

    Call it inside the write transaction: the row lock it takes lasts until commit, so no other replica
    claims the job between this check and the write.
    """
    lease = _current_lease.get()
    if lease is None:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("jobs.fence must run inside the write's transaction")
    held = await conn.fetchval(
        """SELECT true FROM jobs WHERE id = $1 AND lease_token = $2 AND state = 'running'
               AND lease_until > clock_timestamp() FOR KEY SHARE""",
        lease.job_id, lease.token,
    )
    if not held:
        raise LeaseLost(f"job {lease.job_id}: lease lost; refusing to write")


async def enqueue(conn: asyncpg.Connection | asyncpg.Pool, kind: JobKind, payload: JobPayload,
                  delay_s: float = 0.0) -> bool:
    """Add a job once per (kind, payload); True if it is new. Call inside the producer's transaction."""
    ref_id = _checked(kind, payload)
    row = await conn.fetchrow(
        """INSERT INTO jobs (kind, ref_id, run_after) VALUES ($1, $2, now() + make_interval(secs => $3))
           ON CONFLICT (kind, ref_id) DO NOTHING RETURNING id""",
        kind, ref_id, delay_s,
    )
    return row is not None


async def requeue(conn: asyncpg.Connection | asyncpg.Pool, kind: JobKind, payload: JobPayload) -> None:
    """Run a job again (e.g. re-analysis when a new signal joins); a running one finishes first."""
    ref_id = _checked(kind, payload)
    await conn.execute(
        """INSERT INTO jobs (kind, ref_id) VALUES ($1, $2)
           ON CONFLICT (kind, ref_id) DO UPDATE SET state = 'pending', attempts = 0, run_after = now(),
               dead_at = NULL, updated_at = now() WHERE jobs.state IN ('done', 'dead')""",
        kind, ref_id,
    )


async def wake(conn: asyncpg.Connection | asyncpg.Pool, kind: JobKind, payload: JobPayload) -> None:
    """Make a job due now (e.g. an approval arrived); creates it if missing. A running job is left alone:
    it reschedules itself soon enough. A dead job stays dead: only a replay (:func:`retry`) revives it."""
    ref_id = _checked(kind, payload)
    await conn.execute(
        """INSERT INTO jobs (kind, ref_id) VALUES ($1, $2)
           ON CONFLICT (kind, ref_id) DO UPDATE SET run_after = now(), updated_at = now(),
               state = CASE WHEN jobs.state = 'running' THEN jobs.state ELSE 'pending' END,
               attempts = CASE WHEN jobs.state = 'running' THEN jobs.attempts ELSE 0 END
           WHERE jobs.state <> 'dead'""",
        kind, ref_id,
    )


def _token(job: Job) -> uuid.UUID | None:
    return job.token


async def reschedule(pool: asyncpg.Pool, job: Job, owner: str, delay_s: float) -> bool:
    updated = await pool.fetchval(
        """UPDATE jobs SET state = 'pending', attempts = 0, lease_owner = NULL, lease_until = NULL,
                  lease_token = NULL, run_after = LEAST(run_after, now() + make_interval(secs => $3)),
                  updated_at = now()
           WHERE id = $1 AND lease_owner = $2 AND ($4::uuid IS NULL OR lease_token = $4) RETURNING true""",
        job.id, owner, delay_s, _token(job),
    )
    return bool(updated)


def _limits(kinds: Sequence[JobKind], policies: Mapping[JobKind, RetryPolicy] | None) -> list[int]:
    default = RetryPolicy()
    return [(policies or {}).get(kind, default).max_attempts for kind in kinds]


def _names(kinds: Sequence[JobKind]) -> list[str]:
    for kind in kinds:
        if not isinstance(kind, JobKind):
            raise TypeError(f"job kinds are JobKind members, not {kind!r}")
    return [kind.value for kind in kinds]


async def claim(pool: asyncpg.Pool, kinds: Sequence[JobKind], owner: str, lease_s: float, limit: int,
                policies: Mapping[JobKind, RetryPolicy] | None = None) -> list[Job]:
    """Take up to ``limit`` due jobs for ``lease_s``. A job whose holder's lease expired is taken over only
    while it has attempts left; one that has none is :func:`reap`'s."""
    names = _names(kinds)
    token = uuid.uuid4()
    rows = await pool.fetch(
        # run_after = infinity while running: a wake() during the run lowers it, and a Reschedule
        # then runs the job again at once instead of after its delay.
        """UPDATE jobs SET state = 'running', lease_owner = $2, lease_token = $5, run_after = 'infinity',
                  lease_until = now() + make_interval(secs => $3), attempts = attempts + 1, updated_at = now()
           WHERE id IN (
               SELECT j.id FROM jobs j JOIN unnest($1::text[], $6::int[]) AS k(kind, max_attempts) ON k.kind = j.kind
               WHERE j.kind = ANY($1::text[])
                 AND ((j.state = 'pending' AND j.run_after <= now())
                      OR (j.state = 'running' AND j.lease_until < now() AND j.attempts < k.max_attempts))
               ORDER BY j.run_after, j.id LIMIT $4 FOR UPDATE OF j SKIP LOCKED)
           RETURNING id, kind, ref_id, attempts, lease_token""",
        names, owner, lease_s, limit, token, _limits(kinds, policies),
    )
    return [_job(r, r["lease_token"]) for r in rows]


async def renew(pool: asyncpg.Pool, job: Job, owner: str, lease_s: float) -> bool:
    """Extend this holder's lease; False when it is no longer this holder's (the caller must stop)."""
    held = await pool.fetchval(
        """UPDATE jobs SET lease_until = now() + make_interval(secs => $3)
           WHERE id = $1 AND lease_owner = $2 AND state = 'running' AND ($4::uuid IS NULL OR lease_token = $4)
           RETURNING true""",
        job.id, owner, lease_s, _token(job),
    )
    return bool(held)


async def reap(pool: asyncpg.Pool, kinds: Sequence[JobKind], policies: Mapping[JobKind, RetryPolicy] | None = None
               ) -> list[tuple[Job, str]]:
    """Dead-letter jobs whose holders' leases expired on their last attempt (a job that kills or stalls
    every replica that runs it); returns them with their error."""
    names = _names(kinds)
    rows = await pool.fetch(
        """UPDATE jobs j SET state = 'dead', dead_at = now(), lease_owner = NULL, lease_until = NULL,
                  lease_token = NULL, updated_at = now(),
                  last_error = left(format('lease expired on attempt %s of %s (holder %s stopped renewing)',
                                           j.attempts, k.max_attempts, j.lease_owner)
                                    || coalesce('; before: ' || j.last_error, ''), 2000)
           FROM unnest($1::text[], $2::int[]) AS k(kind, max_attempts)
           WHERE j.kind = k.kind AND j.state = 'running' AND j.lease_until < now() AND j.attempts >= k.max_attempts
           RETURNING j.id, j.kind, j.ref_id, j.attempts, j.last_error""",
        names, _limits(kinds, policies),
    )
    return [(_job(r), r["last_error"]) for r in rows]


async def complete(conn: asyncpg.Connection | asyncpg.Pool, job: Job, owner: str) -> bool:
    """Mark the job done if this holder still holds it; False when the lease was lost."""
    updated = await conn.fetchval(
        "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_until = NULL, lease_token = NULL, "
        "updated_at = now() WHERE id = $1 AND lease_owner = $2 AND ($3::uuid IS NULL OR lease_token = $3) "
        "RETURNING true",
        job.id, owner, _token(job),
    )
    return bool(updated)


async def fail(pool: asyncpg.Pool, job: Job, owner: str, error: str, delay_s: float, max_attempts: int) -> bool:
    """Record a failure; retry after ``delay_s`` until ``max_attempts``, then dead-letter the job. True when the
    job is now dead (and this holder still held it)."""
    final = job.attempts >= max_attempts
    updated = await pool.fetchval(
        """UPDATE jobs SET state = $3, last_error = $4, lease_owner = NULL, lease_until = NULL, lease_token = NULL,
                  run_after = now() + make_interval(secs => $5), updated_at = now(),
                  dead_at = CASE WHEN $3 = 'dead' THEN now() END
           WHERE id = $1 AND lease_owner = $2 AND ($6::uuid IS NULL OR lease_token = $6) RETURNING true""",
        job.id, owner, "dead" if final else "pending", error[:2000], delay_s, _token(job),
    )
    return final and bool(updated)


# --- dead letters: listing and replay (the jobs API) ----------------------------------------------------


class JobRecord(BaseModel):
    """A job as the jobs API shows it. ``kind`` is the stored name: a row of a kind this version does not
    declare is still listed (and can be replayed), so nothing stored is hidden."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: str
    ref_id: int
    state: str
    attempts: int
    run_after: datetime
    lease_owner: str | None
    lease_until: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    dead_at: datetime | None


_COLUMNS = ", ".join(JobRecord.model_fields)


async def listing(conn: asyncpg.Connection | asyncpg.Pool, *, state: str | None = None, kind: str | None = None,
                  limit: int = 100, offset: int = 0) -> list[JobRecord]:
    """Jobs, newest change first (dead letters: most recently dead first)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM jobs
            WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR kind = $2)
            ORDER BY coalesce(dead_at, updated_at) DESC, id DESC LIMIT $3 OFFSET $4""",
        state, kind, limit, offset,
    )
    return [JobRecord.model_validate(dict(r)) for r in rows]


async def counts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Number of jobs per kind and state, finished ('done') ones left out: they only accumulate, and counting
    them would scan the whole table on every listing."""
    result: dict[str, dict[str, int]] = {}
    for r in await conn.fetch("SELECT kind, state, count(*) AS n FROM jobs WHERE state IN ('pending', 'running', "
                              "'dead') GROUP BY kind, state"):
        result.setdefault(r["kind"], {})[r["state"]] = r["n"]
    return result


async def retry(conn: asyncpg.Connection, job_id: int, actor: str, reason: str | None = None) -> JobRecord:
    """Replay a dead job: due now with fresh attempts. Inside the caller's transaction (with its audit event).

    A ``workflow`` job (ref: the analysis whose workflow it drives) gives its workflow up when it dies
    (kubernaut.orchestration.workflow_job.give_up): the replay reopens that workflow, which resumes at its first
    unfinished step (steps are looked up by name; executor calls carry idempotency keys), instead of waking a
    workflow that would return at once because it ended.
    """
    row = await conn.fetchrow("SELECT id, kind, ref_id, state FROM jobs WHERE id = $1 FOR UPDATE", job_id)
    if row is None:
        raise JobStateError(f"job {job_id} not found", status=404)
    if row["state"] != "dead":
        raise JobStateError(f"job {job_id} is {row['state']}, not dead: only dead jobs are replayed")
    updated = await conn.fetchrow(
        f"""UPDATE jobs SET state = 'pending', attempts = 0, run_after = now(), dead_at = NULL, lease_owner = NULL,
                   lease_until = NULL, lease_token = NULL, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}""",
        job_id,
    )
    incident_id = None
    if row["kind"] == JobKind.WORKFLOW.value:
        incident_id = await conn.fetchval(
            """UPDATE workflows SET phase = 'executing', finished_at = NULL, error = NULL, updated_at = now()
               WHERE analysis_id = $1 AND phase = 'failed' AND error LIKE $2 || '%' RETURNING incident_id""",
            row["ref_id"], GAVE_UP_PREFIX,
        )
        if incident_id is not None:
            await conn.execute("UPDATE incidents SET phase = 'analyzed', updated_at = now() WHERE id = $1",
                               incident_id)
    await audit.append(conn, actor, "job.retried", incident_id,
                       {"job_id": job_id, "kind": row["kind"], "ref_id": row["ref_id"],
                        "reopened_workflow": incident_id is not None, "reason": reason})
    metrics.job_replayed(row["kind"])
    return JobRecord.model_validate(dict(updated))


#: How a workflow that its dead ``workflow`` job gave up says so in ``workflows.error`` (see :func:`retry`).
GAVE_UP_PREFIX = "gave up after"


async def hold(job: Job, handler: Callable[[Job], Awaitable[None]]) -> None:
    """Run ``handler`` with ``job``'s lease as the current one, the one :func:`fence` checks (a task has its own
    copy of the context, so set it inside the task that runs the handler)."""
    _current_lease.set(_Lease(job.id, job.token) if job.token is not None else None)
    await handler(job)


def replica_identity(prefix: str) -> str:
    return f"{prefix}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
