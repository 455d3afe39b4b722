"""The durable job bus against real PostgreSQL: per-kind attempts with exponential backoff, dead letters
(listed, counted, replayed through the API and the CLI), leases renewed while their holder works, and
writes fenced by the lease so that no workflow step is ever advanced by two replicas."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest
import ray  # noqa: F401  (a metric's first record imports ray: 1 s that must not land in a measured backoff)
from pydantic import SecretStr, ValidationError

from kubernaut.config import load_config
from kubernaut.config.settings import StorageConfig, WorkConfig
from kubernaut.job_worker import JobWorker
from kubernaut.models.jobs import AnalysisRef, JobKind, JobPayload
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.observability import metrics
from kubernaut.orchestration import workflow_job
from kubernaut.orchestration.engine import WorkflowEngine
from kubernaut.storage import jobs
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Job, RetryPolicy
from kubernaut.storage.migrations import migrate
from tests.support.polling import eventually
from tests.support.scripted_executor import ScriptedExecutor, seed

pytestmark = pytest.mark.integration

# The bus's mechanics, on declared kinds (enqueue and claim take a JobKind and its payload).
FLAKY, STURDY, POISON, SLOW = JobKind.NOTIFY, JobKind.ASSESS, JobKind.EMBED, JobKind.ANALYZE


def ref(kind: JobKind, ref_id: int) -> JobPayload:
    """The payload of ``kind`` that refers to ``ref_id``."""
    return kind.spec.payload.from_ref(ref_id)


async def connect(dsn: str, name: str = "kubernaut-test") -> Database:
    return await Database.connect(StorageConfig(dsn=SecretStr(dsn), pool_max_size=10), application_name=name)


def local_count(name: str, **labels: str) -> float:
    """A counter's value in this process's metric registry (the mirror the gateway serves on /metrics)."""
    text = metrics.render_local()[0].decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}_total\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match[1].split(","))) == wanted:
            return float(match[2])
    return 0.0


async def job_row(pool: asyncpg.Pool, kind: JobKind, ref_id: int) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM jobs WHERE kind = $1 AND ref_id = $2", kind, ref_id)


def worker(db: Database, handlers: dict[JobKind, Callable[[Job], Awaitable[None]]], owner: str, **kw: Any
           ) -> JobWorker:
    options: dict[str, Any] = dict(poll_interval_s=0.05, lease_s=30, max_attempts=5, batch_size=10)
    options.update(kw)
    return JobWorker(db.pool, handlers, owner=owner, **options)


# --- configuration --------------------------------------------------------------------------------------


def test_retry_policy_per_kind_falls_back_to_the_defaults() -> None:
    work = WorkConfig(max_attempts=4, backoff_initial_s=1, backoff_max_s=30,
                      kinds={"notify": {"max_attempts": 10}, "workflow": {"backoff_initial_s": 5}})
    assert work.retry_policy("notify") == (10, 1, 30)
    assert work.retry_policy("workflow") == (4, 5, 30)
    assert work.retry_policy("analyze") == (4, 1, 30)
    policy = RetryPolicy(*work.retry_policy("workflow"))
    assert [policy.backoff_s(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]
    with pytest.raises(ValidationError, match="max_attempts"):
        WorkConfig(kinds={"notify": {"max_attempts": 0}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        WorkConfig(kinds={"notify": {"max_attempt": 3}})  # a typo is refused, not ignored
    with pytest.raises(ValidationError, match="not a job kind name"):
        WorkConfig(kinds={"No-Such Kind": {}})
    assert load_config({"work": {"kinds": {"notify": {"max_attempts": 7}}}}).work.retry_policy("notify")[0] == 7


# --- dead letters -----------------------------------------------------------------------------------------


async def test_each_kind_backs_off_exponentially_and_is_dead_lettered_after_its_own_attempts(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    runs: dict[JobKind, list[float]] = {FLAKY: [], STURDY: []}
    given_up: list[tuple[str, str]] = []

    def failing(kind: JobKind) -> Callable[[Job], Awaitable[None]]:
        async def handler(job: Job) -> None:
            runs[kind].append(time.monotonic())
            raise RuntimeError(f"{kind} attempt {job.attempts} broke")
        return handler

    async def gave_up(job: Job, error: str) -> None:
        given_up.append((job.kind, error))

    before = local_count("kubernaut_jobs_dead_lettered", kind=FLAKY.value)
    w = worker(db, {FLAKY: failing(FLAKY), STURDY: failing(STURDY)}, "replica-a", on_give_up=gave_up,
               policies={FLAKY: RetryPolicy(3, 0.3, 10), STURDY: RetryPolicy(4, 0.05, 0.1)})
    try:
        async with db.pool.acquire() as conn:
            await jobs.enqueue(conn, FLAKY, ref(FLAKY, 1))
            await jobs.enqueue(conn, STURDY, ref(STURDY, 1))
        w.start()

        async def both_dead() -> bool:
            rows = await db.pool.fetch("SELECT state FROM jobs")
            return [r["state"] for r in rows] == ["dead", "dead"]

        await eventually(both_dead, timeout=20, what="both jobs dead")
    finally:
        await w.stop()
    assert len(runs[FLAKY]) == 3 and len(runs[STURDY]) == 4  # each kind its own max_attempts
    gaps = [b - a for a, b in zip(runs[FLAKY], runs[FLAKY][1:], strict=False)]
    assert 0.28 <= gaps[0] < 0.9 and 0.58 <= gaps[1] < 1.6, gaps  # 0.3 s, then 0.6 s: exponential
    flaky = await job_row(db.pool, FLAKY, 1)
    assert flaky["attempts"] == 3 and flaky["dead_at"] is not None and flaky["lease_owner"] is None
    assert flaky["last_error"] == f"RuntimeError: {FLAKY} attempt 3 broke"
    assert sorted(k for k, _ in given_up) == sorted([FLAKY, STURDY])
    assert local_count("kubernaut_jobs_dead_lettered", kind=FLAKY.value) == before + 1
    # A dead letter stays dead: neither a wake-up nor the worker's polling runs it again.
    await jobs.wake(db.pool, FLAKY, ref(FLAKY, 1))
    assert (await job_row(db.pool, FLAKY, 1))["state"] == "dead"
    assert await jobs.claim(db.pool, [FLAKY], "replica-b", 30, 10) == []
    listed = await jobs.listing(db.pool, state="dead")
    assert {(j.kind, j.attempts) for j in listed} == {(FLAKY.value, 3), (STURDY.value, 4)}
    await db.close()


async def test_a_job_that_kills_every_holder_is_dead_lettered_when_its_lease_expires(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    policies = {POISON: RetryPolicy(max_attempts=2)}
    async with db.pool.acquire() as conn:
        await jobs.enqueue(conn, POISON, ref(POISON, 7))
    # Two replicas in turn claim it and die holding it (no fail(), no complete(): the lease just expires).
    for holder in ("dies-1", "dies-2"):
        async def claimed(holder: str = holder) -> list[Job]:
            return await jobs.claim(db.pool, [POISON], holder, 0.2, 1, policies)

        taken = await eventually(claimed, timeout=5, what=f"{holder} claims")
        assert taken[0].attempts == int(holder[-1])
    await asyncio.sleep(0.3)
    # Out of attempts: nobody takes it over; a worker's reaper dead-letters it and runs the give-up hook.
    assert await jobs.claim(db.pool, [POISON], "survivor", 30, 1, policies) == []
    given_up: list[str] = []

    async def gave_up(job: Job, error: str) -> None:
        given_up.append(error)

    async def never(job: Job) -> None:
        raise AssertionError("a dead letter must not run")

    w = worker(db, {POISON: never}, "survivor", on_give_up=gave_up, policies=policies)
    w.start()
    try:
        async def dead() -> bool:
            return (await job_row(db.pool, POISON, 7))["state"] == "dead"

        await eventually(dead, timeout=5, what="poison job dead")
    finally:
        await w.stop()
    assert given_up and "lease expired on attempt 2 of 2" in given_up[0] and "dies-2" in given_up[0]
    await db.close()


# --- leases -----------------------------------------------------------------------------------------------


async def test_a_holder_renews_its_lease_and_stops_when_it_is_taken(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    async with db.pool.acquire() as conn:
        await jobs.enqueue(conn, SLOW, ref(SLOW, 1))
    started, cancelled, wrote = asyncio.Event(), asyncio.Event(), []

    async def slow(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(4.5)  # three leases
        except asyncio.CancelledError:
            cancelled.set()
            raise
        async with db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            wrote.append(job.id)

    w = worker(db, {SLOW: slow}, "holder", lease_s=1.5)
    w.start()
    try:
        await asyncio.wait_for(started.wait(), 5)
        first = (await job_row(db.pool, SLOW, 1))["lease_until"]
        # While the holder renews, nobody else can claim, long after the first lease would have ended.
        for _ in range(20):
            assert await jobs.claim(db.pool, [SLOW], "rival", 1.5, 1) == []
            await asyncio.sleep(0.1)
        assert (await job_row(db.pool, SLOW, 1))["lease_until"] > first
        # The lease is taken from under it (the row now names another claim): the next heartbeat stops it.
        await db.pool.execute("UPDATE jobs SET lease_owner = 'rival', lease_token = gen_random_uuid()")
        await asyncio.wait_for(cancelled.wait(), 3.0)
    finally:
        await w.stop()
    assert wrote == []
    row = await job_row(db.pool, SLOW, 1)
    assert row["state"] == "running" and row["lease_owner"] == "rival"  # the holder left the row alone
    await db.close()


class SlowExecutor(ScriptedExecutor):
    """The scripted executor of one replica, recording its calls; dry-runs answer after ``delay_s``."""

    def __init__(self, db: Database, delay_s: float = 0.0) -> None:
        super().__init__(db)
        self.delay_s = delay_s

    async def execute(self, request: ActionRequest) -> ActionResult:
        result = await super().execute(request)
        if request.dry_run:
            await asyncio.sleep(self.delay_s)
        return result


async def record_step_writers(pool: asyncpg.Pool) -> None:
    """Every insert or update of a workflow step, with the replica (application_name) that made it."""
    await pool.execute("""
        CREATE TABLE step_writes (id BIGSERIAL PRIMARY KEY, name TEXT, replica TEXT);
        CREATE FUNCTION note_step_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO step_writes (name, replica) VALUES (NEW.name, current_setting('application_name'));
            RETURN NEW;
        END $$;
        CREATE TRIGGER note_step_write AFTER INSERT OR UPDATE ON workflow_steps
            FOR EACH ROW EXECUTE FUNCTION note_step_write();""")


async def replica(dsn: str, name: str, delay_s: float) -> tuple[WorkflowEngine, Database, SlowExecutor]:
    config = load_config({
        "storage": {"dsn": dsn}, "execution": {"mode": "live"},
        "orchestration": {"stabilization_s": 0, "approval_ttl_s": 60, "autonomy_min_cases": 0,
                          "autonomy_min_lower_bound": 0},
    })
    db = await connect(dsn, name)
    executor = SlowExecutor(db, delay_s)
    return WorkflowEngine(db, executor, config), db, executor


async def two_replicas_on_one_workflow(dsn: str, *, a_heartbeat_s: float | None, a_delay_s: float
                                       ) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Replica A claims the workflow job first (lease 1.5 s, dry-runs answer after ``a_delay_s``); replica B
    starts polling the same job at once. Returns (step, replica) of every step write, and what each saw."""
    engine_a, db_a, exec_a = await replica(dsn, "replica-a", a_delay_s)
    engine_b, db_b, exec_b = await replica(dsn, "replica-b", 0.0)
    await record_step_writers(db_a.pool)
    analysis = await seed(db_a)
    workflow_id = await engine_a.start(analysis)
    await jobs.enqueue(db_a.pool, JobKind.WORKFLOW, AnalysisRef(analysis_id=analysis))  # as the analysis does
    runs: dict[str, list[str]] = {"a": [], "b": []}

    def handler(engine: WorkflowEngine, db: Database, who: str) -> Callable[[Job], Awaitable[None]]:
        async def advance(job: Job) -> None:
            runs[who].append("start")
            try:
                await workflow_job.drive(engine, db.pool, job)
            except BaseException as exc:
                runs[who].append(type(exc).__name__)
                raise
            runs[who].append("done")
        return advance

    a = JobWorker(db_a.pool, {JobKind.WORKFLOW: handler(engine_a, db_a, "a")}, owner="replica-a", poll_interval_s=0.05,
                  lease_s=1.5, max_attempts=5, batch_size=1, heartbeat_s=a_heartbeat_s)
    b = JobWorker(db_b.pool, {JobKind.WORKFLOW: handler(engine_b, db_b, "b")}, owner="replica-b", poll_interval_s=0.05,
                  lease_s=1.5, max_attempts=5, batch_size=1)
    lost_before = local_count("kubernaut_job_leases_lost", kind=JobKind.WORKFLOW.value)
    a.start()
    try:
        async def a_holds() -> bool:
            row = await job_row(db_a.pool, JobKind.WORKFLOW, analysis)
            return row["lease_owner"] == "replica-a"

        await eventually(a_holds, timeout=5, what="replica A claims")
        b.start()

        async def both_idle() -> bool:
            wf = await db_a.pool.fetchrow("SELECT phase FROM workflows WHERE id = $1", workflow_id)
            job = await job_row(db_a.pool, JobKind.WORKFLOW, analysis)
            settled = all(not r or r[-1] != "start" for r in runs.values())
            return wf["phase"] == "completed" and job["state"] == "done" and settled

        await eventually(both_idle, timeout=30, what="workflow completed and both replicas idle")
    finally:
        await asyncio.gather(a.stop(), b.stop())
    writes = [(r["name"], r["replica"])
              for r in await db_a.pool.fetch("SELECT name, replica FROM step_writes ORDER BY id")]
    steps = [r["name"] for r in await db_a.pool.fetch(
        "SELECT name FROM workflow_steps WHERE workflow_id = $1 ORDER BY seq", workflow_id)]
    seen = {"runs": runs, "steps": steps, "mutations": exec_a.mutations + exec_b.mutations,
            "job": dict(await job_row(db_a.pool, JobKind.WORKFLOW, analysis)),
            "leases_lost": local_count("kubernaut_job_leases_lost", kind=JobKind.WORKFLOW.value) - lost_before}
    await asyncio.gather(db_a.close(), db_b.close())
    return writes, seen


async def test_a_renewed_lease_keeps_a_second_replica_off_a_slow_workflow_step(fresh_dsn: str) -> None:
    # A's dry-run takes 4.5 s against a 1.5 s lease (as the orchestrator waits up to step_timeout_s = 120 s on
    # the executor against lease_s = 60 s): A renews, so B never claims the job and every step is A's.
    writes, seen = await two_replicas_on_one_workflow(fresh_dsn, a_heartbeat_s=None, a_delay_s=4.5)
    assert seen["runs"]["b"] == [], seen
    assert {replica for _, replica in writes} == {"replica-a"}
    assert seen["steps"] == ["policy", "dry_run:0", "execute:0", "verify:0", "notify"]
    assert seen["job"]["attempts"] == 1  # never taken over
    assert seen["mutations"] == ["scale_deployment"]


async def test_a_holder_that_lost_its_lease_cannot_advance_the_workflow(fresh_dsn: str) -> None:
    # A stalls past its lease without renewing (a paused process, a partition): B takes the job over and
    # finishes the workflow; when A's late dry-run answer arrives, its write is refused in the transaction.
    writes, seen = await two_replicas_on_one_workflow(fresh_dsn, a_heartbeat_s=1000.0, a_delay_s=4.5)
    by_step: dict[str, set[str]] = {}
    for name, who in writes:
        by_step.setdefault(name, set()).add(who)
    assert all(len(who) == 1 for who in by_step.values()), by_step  # no step advanced by two replicas
    assert by_step["policy"] == {"replica-a"}  # A's write while it held the lease stands
    assert {name for name, who in by_step.items() if who == {"replica-b"}} == {"dry_run:0", "execute:0",
                                                                              "verify:0", "notify"}
    assert seen["runs"]["a"] == ["start", "LeaseLost"], seen
    assert seen["runs"]["b"][-1] == "done"
    assert seen["steps"] == ["policy", "dry_run:0", "execute:0", "verify:0", "notify"]
    assert seen["mutations"] == ["scale_deployment"]  # acted once (the executor's idempotency key)
    assert seen["job"]["attempts"] == 2 and seen["job"]["state"] == "done"
    assert seen["leases_lost"] == 1


# --- replay: storage, API, CLI ----------------------------------------------------------------------------


async def test_replaying_a_dead_workflow_job_reopens_the_workflow_it_gave_up(fresh_dsn: str) -> None:
    engine, db, executor = await replica(fresh_dsn, "replica-a", 0.0)
    analysis = await seed(db)
    workflow_id = await engine.start(analysis)
    await jobs.enqueue(db.pool, JobKind.WORKFLOW, AnalysisRef(analysis_id=analysis))  # as the analysis does
    job = await job_row(db.pool, JobKind.WORKFLOW, analysis)
    # What the orchestrator does when the job dies (WorkflowOrchestrator._gave_up).
    await db.pool.execute("UPDATE jobs SET state = 'dead', dead_at = now(), attempts = 5, last_error = 'boom' "
                          "WHERE id = $1", job["id"])
    await db.pool.execute("UPDATE workflows SET phase = 'failed', error = $2, finished_at = now() WHERE id = $1",
                          workflow_id, f"{jobs.GAVE_UP_PREFIX} 5 attempts: boom")
    async with db.pool.acquire() as conn, conn.transaction():
        replayed = await jobs.retry(conn, job["id"], "alice", "the database is back")
    assert replayed.state == "pending" and replayed.attempts == 0
    wf = await db.pool.fetchrow("SELECT phase, error, finished_at FROM workflows WHERE id = $1", workflow_id)
    assert wf["phase"] == "executing" and wf["error"] is None and wf["finished_at"] is None
    audit = await db.pool.fetchrow("SELECT actor, detail FROM audit_events WHERE event = 'job.retried'")
    assert audit["actor"] == "alice" and audit["detail"]["reason"] == "the database is back"
    with pytest.raises(jobs.JobStateError, match="not dead") as refused:
        async with db.pool.acquire() as conn, conn.transaction():
            await jobs.retry(conn, job["id"], "alice")
    assert refused.value.status == 409
    # The replayed job runs and the workflow completes.
    w = worker(db, {JobKind.WORKFLOW: lambda j: workflow_job.drive(engine, db.pool, j)}, "replica-a")
    w.start()
    try:
        async def completed() -> bool:
            return await db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id) == "completed"

        await eventually(completed, timeout=15, what="replayed workflow completes")
    finally:
        await w.stop()
    assert executor.mutations == ["scale_deployment"]
    await db.close()


async def test_dead_letters_are_listed_and_replayed_through_the_api_and_the_cli(
        api: httpx.AsyncClient, db: asyncpg.Connection, capsys: pytest.CaptureFixture[str]) -> None:
    from kubernaut.cli import main

    # A kind no replica consumes, so the replayed job stays where the replay put it.
    ref = int(time.time() * 1000) % 1_000_000_000
    dead_id = await db.fetchval(
        """INSERT INTO jobs (kind, ref_id, state, attempts, last_error, dead_at)
           VALUES ('replay_probe', $1, 'dead', 5, 'EmbeddingError: model gone', now()) RETURNING id""", ref)
    listed = await api.get("/api/v1/jobs", params={"state": "dead"})
    assert listed.status_code == 200
    body = listed.json()
    mine = [j for j in body["items"] if j["id"] == dead_id]
    assert mine and mine[0]["last_error"] == "EmbeddingError: model gone" and mine[0]["attempts"] == 5
    assert all(j["state"] == "dead" for j in body["items"])
    assert body["counts"]["replay_probe"] == {"dead": 1}

    async with httpx.AsyncClient(base_url=str(api.base_url)) as anonymous:
        assert (await anonymous.get("/api/v1/jobs", params={"state": "dead"})).status_code == 401
        assert (await anonymous.post(f"/api/v1/jobs/{dead_id}/retry")).status_code == 401
    bad = await api.get("/api/v1/jobs", params={"state": "buried"})
    assert bad.status_code == 422 and "state" in bad.text
    assert (await api.post(f"/api/v1/jobs/{2**63}/retry")).status_code == 422
    refused = await api.post(f"/api/v1/jobs/{dead_id}/retry", json={"by": "x\u0000"})
    assert refused.status_code == 422 and "by" in refused.text
    missing = await api.post(f"/api/v1/jobs/{2**62}/retry")
    assert missing.status_code == 404 and "not found" in missing.text

    # kubernaut jobs retry <id>, against the running app.
    token = api.headers["authorization"].split()[-1]
    code = await asyncio.to_thread(main, ["--url", str(api.base_url), "--token", token, "jobs", "retry",
                                          str(dead_id), "--reason", "model restored"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert '"state": "pending"' in out
    row = await db.fetchrow("SELECT state, attempts, dead_at FROM jobs WHERE id = $1", dead_id)
    assert row["state"] == "pending" and row["attempts"] == 0 and row["dead_at"] is None
    again = await api.post(f"/api/v1/jobs/{dead_id}/retry")
    assert again.status_code == 409 and "not dead" in again.text
    audit = await db.fetchrow("SELECT actor, detail FROM audit_events WHERE event = 'job.retried' "
                              "AND (detail->>'job_id')::bigint = $1", dead_id)
    # The actor is whoever the token belongs to (tests/conftest.py: test-token-1 is test-admin), not a flag.
    assert audit["actor"] == "token:test-admin" and audit["detail"]["reason"] == "model restored"
    code = await asyncio.to_thread(main, ["--url", str(api.base_url), "--token", token, "jobs", "--state", "dead",
                                          "--kind", "replay_probe"])
    assert code == 0 and '"items": []' in capsys.readouterr().out


# --- upgrade: the orchestrate → workflow hand-off merged into one kind (0011_one_workflow_job.sql) -----------


async def test_jobs_stored_before_the_merge_of_orchestrate_and_workflow_still_run(fresh_dsn: str) -> None:
    engine, db, executor = await replica(fresh_dsn, "replica-a", 0.0)
    waiting = await seed(db, name="waiting")  # handed over, not picked up yet
    started = await seed(db, name="started")  # its workflow was created and has its own job
    dead = await seed(db, name="dead")  # its workflow job died: a dead letter to replay
    started_wf, dead_wf = await engine.start(started), await engine.start(dead)
    # What the previous version stored: 'orchestrate' by analysis, 'workflow' by workflow.
    await db.pool.execute(
        """INSERT INTO jobs (kind, ref_id, state, attempts, last_error, dead_at) VALUES
               ('orchestrate', $1, 'pending', 0, NULL, NULL), ('orchestrate', $2, 'done', 1, NULL, NULL),
               ('workflow', $3, 'pending', 0, NULL, NULL), ('orchestrate', $4, 'done', 1, NULL, NULL),
               ('workflow', $5, 'dead', 5, 'boom', now()), ('workflow', 999999, 'pending', 0, NULL, NULL)""",
        waiting, started, started_wf, dead, dead_wf)
    async with db.pool.acquire() as conn:
        await conn.execute("DELETE FROM schema_migrations WHERE version = 11")
        assert await migrate(conn) == [11]
    rows = {(r["kind"], r["ref_id"]): r for r in await db.pool.fetch("SELECT * FROM jobs")}
    # One workflow job per analysis; a workflow's own job kept its state; one of a workflow gone is dropped.
    assert set(rows) == {("workflow", waiting), ("workflow", started), ("workflow", dead)}
    assert rows[("workflow", dead)]["state"] == "dead" and rows[("workflow", dead)]["last_error"] == "boom"
    async with db.pool.acquire() as conn, conn.transaction():
        await jobs.retry(conn, rows[("workflow", dead)]["id"], "alice")
    w = worker(db, {JobKind.WORKFLOW: lambda j: workflow_job.drive(engine, db.pool, j)}, "replica-a")
    w.start()
    try:
        async def all_done() -> bool:
            states = await db.pool.fetch("SELECT phase FROM workflows")
            return len(states) == 3 and all(s["phase"] == "completed" for s in states)

        await eventually(all_done, timeout=30, what="every stored hand-off's workflow completes")
    finally:
        await w.stop()
    assert sorted(executor.mutations) == ["scale_deployment"] * 3
    await db.close()
