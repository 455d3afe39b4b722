"""Retention on real PostgreSQL: alerts, actions and notifications of incidents finished long ago are deleted;
open incidents, recent rows, audit events and the learning evidence stay; the audit chain still verifies and
the mined statistics do not move; the periodic job runs once at a time across replicas."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from kubernaut.config import load_config
from kubernaut.intelligence import report
from kubernaut.intelligence.deployment import retention_job
from kubernaut.intelligence.mining import mine_stats
from kubernaut.job_worker import JobWorker
from kubernaut.models.jobs import JobKind, Singleton
from kubernaut.storage import audit, jobs
from kubernaut.storage.retention import retention_round
from tests.support.incident_history import connect, seed_action, seed_assessment, seed_incident

pytestmark = pytest.mark.integration

NOW = datetime.now(timezone.utc)
OLD = NOW - timedelta(days=40)
CUTOFF = NOW - timedelta(days=10)


async def finished(pool: asyncpg.Pool, name: str, *, at: datetime, status: str = "closed") -> int:
    incident = await seed_incident(pool, signals=["KubePodOOMKilled"], name=name, first_seen=at, status=status)
    await pool.execute(
        """UPDATE incidents SET resolved_at = CASE WHEN $2::text = 'open' THEN NULL ELSE $3::timestamptz END,
                  updated_at = $3
           WHERE id = $1""", incident, status, at)
    await pool.execute("UPDATE alerts SET processed_at = received_at WHERE incident_id = $1", incident)
    return incident


async def notification(pool: asyncpg.Pool, incident: int, status: str, at: datetime) -> int:
    return await pool.fetchval(
        """INSERT INTO notifications (incident_id, event, title, body, status, created_at)
           VALUES ($1, 'incident.opened', 't', 'b', $2, $3) RETURNING id""", incident, status, at)


async def loose_alert(pool: asyncpg.Pool, key: str, processed: bool) -> int:
    return await pool.fetchval(
        """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, labels, starts_at, dedup_key,
                               received_at, processed_at)
           VALUES ('r', $1::text, 'Watchdog', 'firing', '{}', $2::timestamptz, $1::text, $2::timestamptz,
                   CASE WHEN $3::boolean THEN $2::timestamptz END) RETURNING id""",
        key, OLD, processed)


async def test_old_rows_of_finished_incidents_go_and_the_rest_stays(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    try:
        old = await finished(pool, "old", at=OLD)
        resolved_old = await finished(pool, "old-resolved", at=OLD, status="resolved")
        still_open = await finished(pool, "open", at=OLD, status="open")
        recent = await finished(pool, "recent", at=NOW - timedelta(days=1))

        # On the old incident: a counted assessment older than the pattern window (goes with its action), one
        # still in the inbox (mining has not counted it), one pending, and a dry run referenced from elsewhere.
        counted = await seed_action(pool, old, "increase_memory_limits", at=OLD)
        await seed_assessment(pool, counted, "effective", recovered_after_s=60)
        uncounted = await seed_action(pool, old, "rollout_restart", at=OLD)
        dry = await seed_action(pool, resolved_old, "rollout_restart", at=OLD, dry_run=True)
        undo = await seed_action(pool, still_open, "rollout_restart", at=OLD)
        await pool.execute("UPDATE actions SET inverse_of = $1 WHERE id = $2", dry, undo)
        await pool.execute(
            """INSERT INTO execution_locks (target_key, action_id, action, owner, expires_at)
               VALUES ('shop:Deployment:old-resolved', $1, 'rollout_restart', 'x', now() + interval '1 minute')""",
            dry)
        assert (await mine_stats(pool, 1000, 10))[0] == 1  # counted: folded into action_stats
        pending = await seed_action(pool, old, "scale_deployment", at=OLD)
        await seed_assessment(pool, pending, "effective")
        await pool.execute("DELETE FROM mining_inbox WHERE assessment_id IN "
                           "(SELECT id FROM assessments WHERE action_id = $1)", pending)
        await pool.execute("UPDATE assessments SET status = 'pending', verdict = NULL WHERE action_id = $1", pending)
        # Counted but inside the pattern window: the patterns still read it.
        windowed = await seed_action(pool, resolved_old, "increase_memory_limits", at=NOW - timedelta(days=20))
        await seed_assessment(pool, windowed, "effective")
        await mine_stats(pool, 1000, 10)
        await pool.execute("UPDATE actions SET created_at = $1, finished_at = $1 WHERE id = $2", OLD, windowed)
        await seed_assessment(pool, uncounted, "ineffective")  # waits in mining_inbox

        open_action = await seed_action(pool, still_open, "rollout_restart", at=OLD)
        recent_action = await seed_action(pool, recent, "rollout_restart", at=OLD)
        await notification(pool, old, "sent", OLD)  # goes
        await notification(pool, resolved_old, "failed", OLD)  # goes
        retrying = await notification(pool, old, "retrying", OLD)
        fresh_note = await notification(pool, old, "sent", NOW)
        open_note = await notification(pool, still_open, "sent", OLD)
        recent_note = await notification(pool, recent, "sent", OLD)
        loose_done = await loose_alert(pool, "loose-done", processed=True)
        loose_waiting = await loose_alert(pool, "loose-waiting", processed=False)
        async with pool.acquire() as conn, conn.transaction():
            for incident in (old, resolved_old, still_open, recent):
                await audit.append(conn, "test", "incident.opened", incident, {"n": incident})
        # Mined statistics exactly as the APIs and the autonomy gate read them (action_stats + inbox tail).
        stats_before = await report.action_stats(pool)
        table_before = [dict(r) for r in await pool.fetch("SELECT * FROM action_stats ORDER BY signature, action")]
        audit_before = await pool.fetchval("SELECT count(*) FROM audit_events")

        result = await retention_round(pool, older_than=CUTOFF, keep_assessed_since=NOW - timedelta(days=30),
                                       batch=2)
        assert result is not None and not result["more"]
        assert result == {"alerts": 3, "notifications": 2, "actions": 2, "assessments": 1, "more": False}

        async def ids(sql: str) -> set[int]:
            return {r[0] for r in await pool.fetch(sql)}

        assert await ids("SELECT id FROM actions") == {uncounted, pending, windowed, undo, open_action, recent_action}
        assert await ids("SELECT id FROM notifications") == {retrying, fresh_note, open_note, recent_note}
        left = await ids("SELECT id FROM alerts")
        assert loose_waiting in left and loose_done not in left
        assert await ids("SELECT DISTINCT incident_id FROM alerts WHERE incident_id IS NOT NULL") == {
            still_open, recent}
        # References that may be empty were emptied; the incidents and their workflows stay.
        assert await pool.fetchval("SELECT inverse_of FROM actions WHERE id = $1", undo) is None
        assert await pool.fetchval("SELECT action_id FROM execution_locks") is None
        assert await pool.fetchval("SELECT count(*) FROM workflow_steps WHERE action_id IS NULL") == 2
        assert await pool.fetchval("SELECT count(*) FROM incidents") == 4
        # Audit untouched and still verifiable; learning statistics unchanged.
        assert await pool.fetchval("SELECT count(*) FROM audit_events") == audit_before
        ok, broken_at, checked = await audit.verify(pool)
        assert ok and broken_at is None and checked == audit_before
        assert await report.action_stats(pool) == stats_before
        assert [dict(r) for r in await pool.fetch("SELECT * FROM action_stats ORDER BY signature, action")] \
            == table_before
        state = await pool.fetchrow("SELECT round, detail FROM mining_state WHERE task = 'retention'")
        assert state["round"] == 1 and state["detail"]["actions"] == 2

        # A second round finds nothing more.
        again = await retention_round(pool, older_than=CUTOFF, keep_assessed_since=NOW - timedelta(days=30))
        assert again == {"alerts": 0, "notifications": 0, "actions": 0, "assessments": 0, "more": False}
    finally:
        await db.close()


async def test_a_round_yields_while_another_holds_the_retention_lock(fresh_dsn: str) -> None:
    from kubernaut.storage.retention import _LOCK_RETENTION

    db = await connect(fresh_dsn)
    try:
        async with db.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_RETENTION)
            assert await retention_round(db.pool, older_than=CUTOFF, keep_assessed_since=CUTOFF) is None
    finally:
        await db.close()


async def test_the_periodic_job_runs_once_across_two_replicas_and_ends_when_retention_is_off(fresh_dsn: str) -> None:
    config = load_config({"storage": {"dsn": fresh_dsn, "retention_days": 10, "retention_interval_s": 3600}})
    a, b = await connect(fresh_dsn), await connect(fresh_dsn)
    runs: list[str] = []

    def handler(name: str, pool: asyncpg.Pool):
        async def run(job: jobs.Job) -> None:
            runs.append(name)
            await retention_job(pool, config)
        return run

    workers = [JobWorker(db.pool, {JobKind.RETENTION: handler(name, db.pool)}, owner=name, poll_interval_s=0.05,
                         lease_s=5, max_attempts=3, batch_size=10) for name, db in (("a", a), ("b", b))]
    try:
        old = await finished(a.pool, "old", at=OLD)
        # Both replicas start: each revives the job (as IntelligenceService does), there is still one row.
        for db in (a, b):
            await jobs.requeue(db.pool, JobKind.RETENTION, Singleton())
        for worker in workers:
            worker.start()
        await asyncio.sleep(2.0)
        assert len(runs) == 1, runs
        assert await a.pool.fetchval("SELECT round FROM mining_state WHERE task = 'retention'") == 1
        assert await a.pool.fetchval("SELECT count(*) FROM alerts WHERE incident_id = $1", old) == 0
        job = await a.pool.fetchrow("SELECT state, run_after FROM jobs WHERE kind = $1", JobKind.RETENTION)
        assert job["state"] == "pending" and job["run_after"] > datetime.now(timezone.utc) + timedelta(minutes=59)

        # Retention switched off: the job's next run ends it instead of rescheduling.
        config.storage.retention_days = None
        await jobs.wake(a.pool, JobKind.RETENTION, Singleton())
        await asyncio.sleep(1.0)
        assert len(runs) == 2, runs
        assert await a.pool.fetchval("SELECT state FROM jobs WHERE kind = $1", JobKind.RETENTION) == "done"
        assert await a.pool.fetchval("SELECT round FROM mining_state WHERE task = 'retention'") == 1
    finally:
        for worker in workers:
            await worker.stop()
        await a.close()
        await b.close()
