"""Approval rehearsal (execution.dry_run_approvals): in dry-run, where the policy would wait for a human live, the
workflow requests a real approval, marked as a rehearsal, decided through the same decide() path (the requester may
not approve, the two-person rule, an override judged and dry-run again); approving completes the workflow without
one live executor call, rejecting ends it, expiry escalates. The flag off, a dry-run never asks (as before); live
mode is the same with the flag on. The engine against real PostgreSQL with the scripted executor (our own seam)."""

from __future__ import annotations

from typing import Any

import pytest

from kubernaut.config import load_config
from kubernaut.models.principal import Principal, Role
from kubernaut.orchestration.engine import ApprovalError, WorkflowEngine
from kubernaut.storage import approvals
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Reschedule
from tests.support.scripted_executor import ScriptedExecutor, seed

pytestmark = pytest.mark.integration

SOURCE = {"address": "10.0.0.7", "user_agent": "pytest"}
DRY_NOTE = "execution mode is dry-run: nothing was changed"


async def make_engine(dsn: str, *, mode: str = "dry-run", rehearse: bool = True, **orch: Any
                      ) -> tuple[WorkflowEngine, Database, ScriptedExecutor]:
    config = load_config({
        "storage": {"dsn": dsn}, "execution": {"mode": mode, "dry_run_approvals": rehearse},
        "orchestration": {"stabilization_s": 0, "approval_ttl_s": 60, **orch},
    })
    db = await Database.connect(config.storage)
    executor = ScriptedExecutor(db)
    return WorkflowEngine(db, executor, config), db, executor


def who(name: str) -> dict[str, Any]:
    return Principal(name=name, method="oidc", roles=frozenset({Role.APPROVER}),
                     approve_namespaces=("shop",)).model_dump(mode="json")


async def run_to_rest(engine: WorkflowEngine, workflow_id: int) -> str:
    for _ in range(20):
        try:
            await engine.advance(workflow_id)
        except Reschedule:
            break
        if await phase(engine, workflow_id) not in ("pending", "executing", "verifying"):
            break
    return await phase(engine, workflow_id)


async def phase(engine: WorkflowEngine, workflow_id: int) -> str:
    return await engine.db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id)


async def waiting(engine: WorkflowEngine, db: Database, **seeded: Any) -> tuple[int, int]:
    """A workflow the shipped policy sends to approval (production, confidence below 0.8), at rest."""
    workflow_id = await engine.start(await seed(db, environment="production", confidence=0.75, **seeded))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    return workflow_id, await db.pool.fetchval("SELECT id FROM approvals WHERE workflow_id = $1", workflow_id)


def no_live_call(executor: ScriptedExecutor) -> bool:
    return executor.mutations == [] and bool(executor.calls) and all(c.dry_run for c in executor.calls)


async def test_approving_a_rehearsal_completes_the_dry_run_without_a_live_call(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, approvals={"two_person_for": ["medium"]})
    workflow_id, approval_id = await waiting(engine, db)
    assert no_live_call(executor)
    assert await db.pool.fetchval("SELECT phase FROM incidents") == "awaiting_approval"
    record = await approvals.get(db.pool, approval_id)
    assert record is not None and record.rehearsal and record.status == "pending"
    assert "production needs confidence of at least 0.8" in record.reason  # the real policy's reason
    assert record.approvals_required == 2  # scale_deployment is medium risk: the two-person rule applies as live
    note = await db.pool.fetchrow("SELECT title, body, approval_id FROM notifications WHERE event = "
                                  "'approval.requested'")
    assert note["approval_id"] == approval_id and "dry-run rehearsal" in note["title"]
    assert "approving changes nothing" in note["body"]
    assert await db.pool.fetchval("SELECT detail->>'rehearsal' FROM audit_events WHERE event = 'approval.requested'"
                                  ) == "true"

    # The same checks as live: the requester may not approve; the first approver waits for a second one.
    with pytest.raises(ApprovalError, match="requested this remediation and cannot approve it"):
        await engine.decide(approval_id, True, who("kubernaut"), None, None, SOURCE)
    # An override is judged and dry-run again before it counts (and only ever dry-run after).
    first = await engine.decide(approval_id, True, who("alice"), "six", {"replicas": 6}, SOURCE)
    assert first["status"] == "pending" and first["rehearsal"]
    with pytest.raises(ApprovalError, match="second, distinct approver"):
        await engine.decide(approval_id, True, who("alice"), None, None, SOURCE)
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    second = await engine.decide(approval_id, True, who("bob"), "agreed", None, SOURCE)
    assert second["status"] == "approved" and second["decided_by"] == "oidc:bob"

    assert await run_to_rest(engine, workflow_id) == "completed"
    assert no_live_call(executor), [(c.idempotency_key, c.dry_run) for c in executor.calls]
    assert [c.parameters for c in executor.calls if c.idempotency_key.endswith("dry_run:override")] == [
        {"replicas": 6}]
    assert await db.pool.fetchval("SELECT count(*) FROM actions WHERE NOT dry_run") == 0
    assert await db.pool.fetchval("SELECT phase FROM incidents") == "dry_run_completed"
    assert await db.pool.fetchval("SELECT status FROM approvals") == "used"
    reason = await db.pool.fetchval("SELECT detail->>'reason' FROM audit_events WHERE event = 'workflow.completed'")
    assert reason == f"approved by oidc:bob with override {{'replicas': 6}}; {DRY_NOTE}", reason
    body = await db.pool.fetchval("SELECT body FROM notifications WHERE event = 'workflow.completed'")
    assert f"approved by oidc:bob with override {{'replicas': 6}}; {DRY_NOTE}" in body
    names = [r["name"] for r in await db.pool.fetch(
        "SELECT name FROM workflow_steps WHERE workflow_id = $1 ORDER BY seq", workflow_id)]
    assert "approval" in names and not [n for n in names if n.startswith(("execute", "verify", "rollback"))]
    await engine.advance(workflow_id)  # a redelivered job does nothing more
    assert no_live_call(executor)
    await db.close()


async def test_rejecting_a_rehearsal_ends_it_and_expiry_escalates(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id, approval_id = await waiting(engine, db)
    rejected = await engine.decide(approval_id, False, who("carol"), "not that", None, SOURCE)
    assert rejected["status"] == "rejected" and rejected["rehearsal"]
    assert await run_to_rest(engine, workflow_id) == "cancelled"
    assert "rejected by oidc:carol: not that" in await db.pool.fetchval(
        "SELECT error FROM workflows WHERE id = $1", workflow_id)

    expiring, expiring_approval = await waiting(engine, db, name="web")
    await db.pool.execute("UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1",
                          expiring_approval)
    assert await run_to_rest(engine, expiring) == "timed_out"
    assert await db.pool.fetchval("SELECT status FROM approvals WHERE id = $1", expiring_approval) == "expired"
    assert no_live_call(executor)
    await db.close()


async def test_without_the_flag_a_dry_run_never_asks_and_live_is_unchanged(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, rehearse=False)
    workflow_id = await engine.start(await seed(db, environment="production", confidence=0.75))
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert no_live_call(executor)
    assert await db.pool.fetchval("SELECT count(*) FROM approvals") == 0
    assert "(live, this would wait for approval: " in await db.pool.fetchval(
        "SELECT detail->>'reason' FROM audit_events WHERE event = 'workflow.completed'")
    await db.close()

    # Live, the flag changes nothing: a real approval, not a rehearsal, and the approved action is executed.
    engine, db, executor = await make_engine(fresh_dsn, mode="live", autonomy_min_cases=0,
                                             autonomy_min_lower_bound=0)
    workflow_id, approval_id = await waiting(engine, db, name="live")
    record = await approvals.get(db.pool, approval_id)
    assert record is not None and not record.rehearsal
    assert "rehearsal" not in await db.pool.fetchval(
        "SELECT title FROM notifications WHERE approval_id = $1", approval_id)
    await engine.decide(approval_id, True, who("alice"), None, None, SOURCE)
    assert await run_to_rest(engine, workflow_id) == "completed" and executor.mutations == ["scale_deployment"]
    await db.close()
