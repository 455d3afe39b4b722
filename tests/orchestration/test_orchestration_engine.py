"""The workflow engine against real PostgreSQL, with a scripted executor (our own seam): policy,
approvals (approve / reject / expiry / single use / override), verification failure → rollback,
crash-resume without repeating a step, blocking rules, one workflow per target."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubernaut.config import load_config
from kubernaut.models.jobs import AnalysisRef, JobKind
from kubernaut.models.principal import Principal, Role
from kubernaut.orchestration.engine import ApprovalError, WorkflowEngine
from kubernaut.orchestration.policy import PolicyInput, evaluate, load_policy
from kubernaut.storage import jobs
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Reschedule
from tests.support.scripted_executor import ScriptedExecutor, seed

pytestmark = pytest.mark.integration


async def make_engine(dsn: str, executor_factory: Any = ScriptedExecutor, dry_run: bool = False, **orch: Any
                      ) -> tuple[WorkflowEngine, Database, Any]:
    config = load_config({
        "storage": {"dsn": dsn}, "execution": {"mode": "dry-run" if dry_run else "live"},
        "orchestration": {"stabilization_s": 0, "approval_ttl_s": 60, "autonomy_min_cases": 0,
                          "autonomy_min_lower_bound": 0, **orch},
    })
    db = await Database.connect(config.storage)
    executor = executor_factory(db)
    return WorkflowEngine(db, executor, config), db, executor


def approver(name: str, method: str = "oidc") -> dict[str, Any]:
    """An authenticated principal as the gateway passes it to the orchestrator."""
    return Principal(name=name, method=method, roles=frozenset({Role.APPROVER}),
                     approve_namespaces=("shop",)).model_dump(mode="json")


SOURCE = {"address": "10.0.0.7", "user_agent": "kubectl-kubernaut/1.0"}


async def run_to_rest(engine: WorkflowEngine, workflow_id: int, limit: int = 20) -> str:
    """Advance until the workflow waits or ends (what the job worker does, minus the timing)."""
    for _ in range(limit):
        try:
            await engine.advance(workflow_id)
        except Reschedule:
            return await phase(engine, workflow_id)
        current = await phase(engine, workflow_id)
        if current not in ("pending", "executing", "verifying"):
            return current
    raise AssertionError("workflow did not come to rest")


async def phase(engine: WorkflowEngine, workflow_id: int) -> str:
    return await engine.db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id)


async def step_names(engine: WorkflowEngine, workflow_id: int) -> list[str]:
    rows = await engine.db.pool.fetch("SELECT name FROM workflow_steps WHERE workflow_id = $1 ORDER BY seq",
                                      workflow_id)
    return [r["name"] for r in rows]


async def test_allowed_action_executes_verifies_and_completes(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db))
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert await step_names(engine, workflow_id) == ["policy", "dry_run:0", "execute:0", "verify:0", "notify"]
    assert executor.mutations == ["scale_deployment"]
    assert await db.pool.fetchval("SELECT phase FROM incidents") == "remediated"
    # Running it again (a second replica, a redelivered job) does nothing more.
    await engine.advance(workflow_id)
    assert executor.mutations == ["scale_deployment"]
    await db.close()


async def test_crash_between_execute_and_record_does_not_act_twice(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db))
    original = engine._record

    async def crash_on_execute_record(workflow: int, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "execute:0":
            raise ConnectionError("replica died before recording the step")
        await original(workflow, name, *args, **kwargs)

    engine._record = crash_on_execute_record  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await engine.advance(workflow_id)
    engine._record = original  # type: ignore[method-assign]
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert executor.mutations == ["scale_deployment"]  # the retried step got the recorded outcome
    await db.close()


async def test_failed_verification_rolls_back_through_the_inverse_and_escalates(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, lambda db: ScriptedExecutor(db, verify_result=False))
    workflow_id = await engine.start(await seed(db))
    assert await run_to_rest(engine, workflow_id) == "rolled_back"
    assert executor.mutations == ["scale_deployment", "scale_deployment"]
    rollback = [c for c in executor.calls if c.idempotency_key.endswith("rollback:0")]
    assert rollback and rollback[0].parameters == {"replicas": 2}
    error = await db.pool.fetchval("SELECT error FROM workflows WHERE id = $1", workflow_id)
    assert "verification" in error and "escalated" in error
    await db.close()


async def test_approval_required_nothing_happens_until_approved_and_it_is_single_use(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db, environment="production", confidence=0.75))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    assert executor.mutations == []
    approval = await db.pool.fetchrow("SELECT * FROM approvals")
    assert approval["status"] == "pending" and approval["dry_run_diff"]
    with pytest.raises(ApprovalError, match="replicas"):
        await engine.decide(approval["id"], True, approver("alice"), "ok", {"replicas": -3}, SOURCE)
    decided = await engine.decide(approval["id"], True, approver("alice"), "looks right", {"replicas": 6}, SOURCE)
    assert decided["status"] == "approved" and decided["decided_by"] == "oidc:alice"
    assert decided["decided_method"] == "oidc" and decided["decided_roles"] == ["approver"]
    assert decided["decided_address"] == "10.0.0.7" and decided["decided_user_agent"] == "kubectl-kubernaut/1.0"
    with pytest.raises(ApprovalError, match="already approved"):
        await engine.decide(approval["id"], True, approver("mallory"), None, None)
    assert await run_to_rest(engine, workflow_id) == "completed"
    executed = [c for c in executor.calls if not c.dry_run]
    assert [c.parameters for c in executed] == [{"replicas": 6}]
    assert await db.pool.fetchval("SELECT status FROM approvals") == "used"
    events = [r["event"] for r in await db.pool.fetch("SELECT event FROM audit_events ORDER BY id")]
    assert events.index("approval.approved") < events.index("approval.used") < events.index("workflow.completed")
    await db.close()


async def test_unknown_environment_waits_for_approval_as_production_does(fresh_dsn: str) -> None:
    """An unlabelled namespace is judged by production rules (orchestration.unknown_environment)."""
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db, environment="unknown", confidence=0.75))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    assert executor.mutations == []
    policy = await db.pool.fetchval("SELECT detail FROM workflow_steps WHERE name = 'policy'")
    assert policy["rule"] == "production-below-0.8" and "judged as production" in policy["reason"]
    await db.close()
    # Configured otherwise, the same incident runs as staging would.
    engine, db, executor = await make_engine(fresh_dsn, unknown_environment="staging")
    workflow_id = await engine.start(await seed(db, environment="unknown", confidence=0.75, name="api-2"))
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert executor.mutations == ["scale_deployment"]
    await db.close()


async def test_rejection_ends_the_workflow_without_acting(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db, kind="StatefulSet", action="scale_statefulset"))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    approval_id = await db.pool.fetchval("SELECT id FROM approvals")
    await engine.decide(approval_id, False, approver("bob"), "not during the sale", None)
    assert await run_to_rest(engine, workflow_id) == "cancelled"
    assert executor.mutations == []
    assert "bob" in await db.pool.fetchval("SELECT error FROM workflows")
    await db.close()


async def test_expired_approval_escalates(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, approval_ttl_s=10)
    workflow_id = await engine.start(await seed(db, environment="production", confidence=0.75))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    await db.pool.execute("UPDATE approvals SET expires_at = now() - interval '1 second'")
    assert await run_to_rest(engine, workflow_id) == "timed_out"
    assert await db.pool.fetchval("SELECT status FROM approvals") == "expired"
    assert await db.pool.fetchval("SELECT phase FROM incidents") == "escalated"
    with pytest.raises(ApprovalError, match="already expired"):
        await engine.decide(await db.pool.fetchval("SELECT id FROM approvals"), True, approver("late"), None, None)
    assert executor.mutations == []
    await db.close()


async def test_low_confidence_goes_to_review_with_only_a_dry_run(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db, confidence=0.5))
    assert await run_to_rest(engine, workflow_id) == "review"
    assert all(c.dry_run for c in executor.calls) and executor.calls
    await db.close()


async def test_autonomy_without_evidence_asks_for_approval(fresh_dsn: str) -> None:
    engine, db, _ = await make_engine(fresh_dsn, autonomy_min_cases=3, autonomy_min_lower_bound=0.5)
    workflow_id = await engine.start(await seed(db))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    decision = (await db.pool.fetchval("SELECT detail FROM workflow_steps WHERE name = 'policy'"))
    assert decision["policy"] == "allow" and decision["outcome"] == "require_approval"
    assert "0/0 verified successes" in decision["reason"]
    await db.close()


async def test_cooldown_blocks_a_repeat_on_the_same_target(fresh_dsn: str) -> None:
    engine, db, _ = await make_engine(fresh_dsn, cooldown_s=300)
    first = await engine.start(await seed(db))
    assert await run_to_rest(engine, first) == "completed"
    second = await engine.start(await seed(db))
    assert await run_to_rest(engine, second) == "blocked"
    block = await db.pool.fetchrow("SELECT * FROM blocks")
    assert block["rule"] == "cooldown" and block["until"] is not None
    await db.close()


async def test_oscillation_and_failure_streaks_block(fresh_dsn: str) -> None:
    engine, db, _ = await make_engine(fresh_dsn, cooldown_s=0, failure_block_after=2)
    for replicas in (5, 2):
        wf = await engine.start(await seed(db, parameters={"replicas": replicas}))
        assert await run_to_rest(engine, wf) == "completed"
    third = await engine.start(await seed(db, parameters={"replicas": 5}))
    assert await run_to_rest(engine, third) == "blocked"
    assert await db.pool.fetchval("SELECT rule FROM blocks") == "oscillation"

    engine2, db2, _ = await make_engine(fresh_dsn, lambda db: ScriptedExecutor(db, fail={"rollout_restart"}),
                                        cooldown_s=0, failure_block_after=2, ineffective_chain=10)
    for _ in range(2):
        wf = await engine2.start(await seed(db2, action="rollout_restart", parameters={}, name="web"))
        assert await run_to_rest(engine2, wf) == "failed"
    wf = await engine2.start(await seed(db2, action="rollout_restart", parameters={}, name="web"))
    assert await run_to_rest(engine2, wf) == "blocked"
    assert "failed 2 times" in await db2.pool.fetchval("SELECT reason FROM blocks WHERE rule = 'consecutive-failures'")
    await db.close()
    await db2.close()


async def test_one_workflow_per_target_at_a_time(fresh_dsn: str) -> None:
    engine, db, _ = await make_engine(fresh_dsn, cooldown_s=0)
    first = await engine.start(await seed(db, environment="production", confidence=0.75))
    second = await engine.start(await seed(db))
    assert await run_to_rest(engine, first) == "awaiting_approval"
    with pytest.raises(Reschedule, match="still working on this target"):
        await engine.advance(second)
    await db.close()


async def test_dry_run_mode_never_asks_and_never_acts(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, dry_run=True)
    workflow_id = await engine.start(await seed(db, environment="production", confidence=0.75))
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert executor.mutations == [] and all(c.dry_run for c in executor.calls)
    assert await db.pool.fetchval("SELECT count(*) FROM approvals") == 0
    assert "this would wait for approval" in await db.pool.fetchval(
        "SELECT body FROM notifications ORDER BY id DESC LIMIT 1")
    await db.close()


async def test_concurrent_advances_of_one_workflow_act_once(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id = await engine.start(await seed(db))

    async def advance() -> None:
        try:
            await engine.advance(workflow_id)
        except Reschedule:
            pass

    await asyncio.gather(*(advance() for _ in range(5)))
    await run_to_rest(engine, workflow_id)
    assert executor.mutations == ["scale_deployment"]
    await db.close()


@pytest.mark.parametrize(("facts", "decision"), [
    ({"mutates": False, "confidence": 0.1}, "allow"),
    ({"confidence": 0.69}, "review"),
    ({"target_kind": "Node", "confidence": 0.95}, "require_approval"),
    ({"environment": "production", "confidence": 0.79}, "require_approval"),
    ({"environment": "production", "confidence": 0.85}, "allow"),
    ({"environment": "production", "confidence": 0.85, "engine": "llm:gpt"}, "require_approval"),
    ({"risk": "high", "confidence": 0.95}, "require_approval"),
    ({"environment": "staging", "confidence": 0.75}, "allow"),
])
def test_default_policy(facts: dict[str, Any], decision: str) -> None:
    base = dict(environment="staging", priority="P2", severity="warning", risk="medium", target_kind="Deployment",
                action="rollout_restart", namespace="shop", engine="rules", mutates=True, sensitive=False,
                confidence=0.9)
    assert evaluate(load_policy(), PolicyInput(**{**base, **facts})).decision == decision


def test_wilson_lower_bound() -> None:
    from kubernaut.orchestration.autonomy import wilson_lower_bound

    assert wilson_lower_bound(0, 0) == 0.0
    assert wilson_lower_bound(3, 3) < 0.5 < wilson_lower_bound(50, 50)
    assert wilson_lower_bound(95, 100) == pytest.approx(0.888, abs=0.01)


async def test_job_wake_brings_a_waiting_workflow_forward(fresh_dsn: str) -> None:
    _, db, _ = await make_engine(fresh_dsn)
    async with db.pool.acquire() as conn:
        await jobs.enqueue(conn, JobKind.WORKFLOW, AnalysisRef(analysis_id=42), delay_s=3600)
        await jobs.wake(conn, JobKind.WORKFLOW, AnalysisRef(analysis_id=42))
    claimed = await jobs.claim(db.pool, [JobKind.WORKFLOW], "me", 30, 5)
    assert [j.ref_id for j in claimed] == [42]
    await db.close()


class FixedAssessments:
    def __init__(self, answer: dict[str, Any] | None) -> None:
        self.answer = answer

    async def assessment(self, action_id: int) -> dict[str, Any] | None:
        return self.answer


async def test_an_ineffective_assessment_rolls_back_and_an_effective_one_completes(fresh_dsn: str) -> None:
    engine, db, _ = await make_engine(fresh_dsn)
    engine.assessments = FixedAssessments({"status": "done", "verdict": "ineffective", "score": 0.1,
                                           "reasons": ["alert still firing"]})
    workflow_id = await engine.start(await seed(db))
    assert await run_to_rest(engine, workflow_id) == "rolled_back"
    assert "ineffective" in await db.pool.fetchval("SELECT error FROM workflows WHERE id = $1", workflow_id)
    assert await db.pool.fetchval("SELECT count(*) FROM jobs WHERE kind = 'assess'") == 1  # the executed action

    engine.assessments = FixedAssessments(None)  # not scored yet: the verify step waits
    second = await engine.start(await seed(db, name="other"))
    assert await run_to_rest(engine, second) == "verifying"
    engine.assessments = FixedAssessments({"status": "done", "verdict": "effective", "score": 0.9, "reasons": []})
    assert await run_to_rest(engine, second) == "completed"
    detail = await db.pool.fetchval(
        "SELECT detail FROM workflow_steps WHERE workflow_id = $1 AND name = 'verify:0'", second)
    assert detail["assessment"]["verdict"] == "effective"
    await db.close()
