"""Approvals that mean something, on the real workflow engine and PostgreSQL (scripted executor seam): the
decision is an authenticated principal's, recorded with how it authenticated and where it came from; the
requester cannot approve; two-person risk levels need two distinct approvers; an override is decided again
(policy, blocking, environment) and dry-run again, and refused with the reason when it would not pass; every
refusal is audited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubernaut.config import load_config
from kubernaut.models.principal import Principal, Role
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.orchestration.engine import ApprovalError, WorkflowEngine
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Reschedule
from tests.support.scripted_executor import ScriptedExecutor, seed

pytestmark = pytest.mark.integration

SOURCE = {"address": "10.0.0.7", "user_agent": "kubectl-kubernaut/1.0"}

# Production waits for a human; scaling to zero (risk high, raised by the parameters) is never allowed.
NO_SCALE_TO_ZERO = """
version: 1
rules:
  - name: no-scale-to-zero
    when: {action: [scale_deployment], risk: [high, critical]}
    decision: deny
    reason: "scaling a Deployment to zero is an outage"
  - name: production-needs-approval
    when: {environment: [production]}
    decision: require_approval
  - name: everything-else
    when: {}
    decision: allow
"""


def who(name: str, method: str = "oidc") -> dict[str, Any]:
    return Principal(name=name, method=method, roles=frozenset({Role.APPROVER}),
                     approve_namespaces=("shop",)).model_dump(mode="json")


async def make_engine(dsn: str, executor_factory: Any = ScriptedExecutor, **orch: Any
                      ) -> tuple[WorkflowEngine, Database, Any]:
    config = load_config({
        "storage": {"dsn": dsn}, "execution": {"mode": "live"},
        "orchestration": {"stabilization_s": 0, "approval_ttl_s": 60, "autonomy_min_cases": 0,
                          "autonomy_min_lower_bound": 0, "cooldown_s": 0, **orch},
    })
    db = await Database.connect(config.storage)
    executor = executor_factory(db)
    return WorkflowEngine(db, executor, config), db, executor


async def run_to_rest(engine: WorkflowEngine, workflow_id: int) -> str:
    for _ in range(20):
        try:
            await engine.advance(workflow_id)
        except Reschedule:
            break
        current = await engine.db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id)
        if current not in ("pending", "executing", "verifying"):
            break
    return await engine.db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id)


async def waiting(engine: WorkflowEngine, db: Database, **seeded: Any) -> tuple[int, int]:
    workflow_id = await engine.start(await seed(db, environment="production", **seeded))
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
    return workflow_id, await db.pool.fetchval("SELECT id FROM approvals WHERE workflow_id = $1", workflow_id)


async def refusals(db: Database) -> list[dict[str, Any]]:
    rows = await db.pool.fetch("SELECT actor, detail FROM audit_events WHERE event = 'approval.refused' ORDER BY id")
    return [{"actor": r["actor"], **r["detail"]} for r in rows]


async def refused(engine: WorkflowEngine, approval_id: int, approve: bool, principal: Any,
                  override: dict[str, Any] | None = None, match: str = "") -> ApprovalError:
    with pytest.raises(ApprovalError, match=match) as error:
        await engine.decide(approval_id, approve, principal, "because", override, SOURCE)
    return error.value


async def test_the_system_cannot_approve_its_own_remediation_and_a_name_is_not_a_principal(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn)
    workflow_id, approval_id = await waiting(engine, db, confidence=0.75)
    assert await db.pool.fetchval("SELECT requested_by FROM approvals") == "kubernaut"

    error = await refused(engine, approval_id, True, who("kubernaut", "token"), match="cannot approve")
    assert error.status == 403
    # A free-text name (the old body field `by`) is not an authenticated principal.
    error = await refused(engine, approval_id, True, "alice", match="authenticated principal")
    assert error.status == 401

    assert await db.pool.fetchval("SELECT status FROM approvals") == "pending"
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval" and executor.mutations == []
    audited = await refusals(db)
    assert [(r["actor"], r["refusal"]) for r in audited] == [("token:kubernaut", "self_approval"),
                                                            ("unauthenticated", "unauthenticated")]
    assert "requested this remediation" in audited[0]["reason"]
    assert audited[0]["address"] == "10.0.0.7" and audited[0]["user_agent"] == "kubectl-kubernaut/1.0"
    await db.close()


async def test_two_person_rule_needs_two_distinct_principals(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, approvals={"two_person_for": ["high"]})
    # Scaling to zero raises scale_deployment's risk to high: two approvers.
    workflow_id, approval_id = await waiting(engine, db, parameters={"replicas": 0})
    assert await db.pool.fetchval("SELECT approvals_required FROM approvals") == 2

    first = await engine.decide(approval_id, True, who("alice"), "agreed", None, SOURCE)
    assert first["status"] == "pending" and [v["actor"] for v in first["votes"]] == ["oidc:alice"]
    assert await run_to_rest(engine, workflow_id) == "awaiting_approval" and executor.mutations == []

    error = await refused(engine, approval_id, True, who("alice"), match="second, distinct approver")
    assert error.status == 403

    second = await engine.decide(approval_id, True, who("bob", "kubernetes"), "agreed too", None, SOURCE)
    assert second["status"] == "approved" and second["decided_by"] == "kubernetes:bob"
    assert [(v["actor"], v["method"], v["address"]) for v in second["votes"]] == [
        ("oidc:alice", "oidc", "10.0.0.7"), ("kubernetes:bob", "kubernetes", "10.0.0.7")]
    assert await run_to_rest(engine, workflow_id) == "completed" and executor.mutations == ["scale_deployment"]

    events = await db.pool.fetch("SELECT actor, event, detail FROM audit_events WHERE event LIKE 'approval.%' "
                                 "ORDER BY id")
    decided = [(e["actor"], e["event"]) for e in events if e["event"] != "approval.requested"]
    assert decided == [("oidc:alice", "approval.approved_pending_second"), ("oidc:alice", "approval.refused"),
                       ("kubernetes:bob", "approval.approved"), ("orchestrator", "approval.used")]
    approved = next(e["detail"] for e in events if e["event"] == "approval.approved")
    assert approved["principal"] == {"actor": "kubernetes:bob", "method": "kubernetes", "roles": ["approver"],
                                     "address": "10.0.0.7", "user_agent": "kubectl-kubernaut/1.0"}
    assert approved["approvers"] == ["oidc:alice", "kubernetes:bob"]
    await db.close()


async def test_a_rejection_by_anyone_allowed_ends_a_two_person_approval(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, approvals={"two_person_for": ["high"]})
    workflow_id, approval_id = await waiting(engine, db, parameters={"replicas": 0})
    await engine.decide(approval_id, True, who("alice"), "agreed", None, SOURCE)
    rejected = await engine.decide(approval_id, False, who("carol"), "not now", None, SOURCE)
    assert rejected["status"] == "rejected" and rejected["decided_by"] == "oidc:carol"
    assert await run_to_rest(engine, workflow_id) == "cancelled" and executor.mutations == []
    await db.close()


async def test_an_override_the_policy_would_deny_is_refused_with_the_reason(fresh_dsn: str, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(NO_SCALE_TO_ZERO)
    engine, db, executor = await make_engine(fresh_dsn, policy_file=str(policy))
    workflow_id, approval_id = await waiting(engine, db)

    error = await refused(engine, approval_id, True, who("alice"), {"replicas": 0},
                          match="override refused: the policy denies scale_deployment")
    assert error.status == 422 and "scaling a Deployment to zero is an outage" in str(error)
    assert await db.pool.fetchval("SELECT status FROM approvals") == "pending"
    assert not [c for c in executor.calls if c.parameters == {"replicas": 0}]  # refused before any dry-run
    assert [(r["actor"], r["refusal"]) for r in await refusals(db)] == [("oidc:alice", "override_denied")]

    # Within policy: decided again, dry-run again (a new dry-run action), then approved and executed as approved.
    decided = await engine.decide(approval_id, True, who("alice"), "six is enough", {"replicas": 6}, SOURCE)
    assert decided["status"] == "approved" and decided["override_parameters"] == {"replicas": 6}
    dry_run = await db.pool.fetchrow("SELECT * FROM actions WHERE idempotency_key LIKE $1",
                                     f"workflow-{workflow_id}-approval-{approval_id}-override-%")
    assert dry_run["dry_run"] and dry_run["parameters"] == {"replicas": 6}
    assert decided["votes"][0]["dry_run_action_id"] == dry_run["id"]
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert [c.parameters for c in executor.calls if not c.dry_run] == [{"replicas": 6}]
    await db.close()


class DryRunRefuses(ScriptedExecutor):
    """The executor's dry-run refuses 7 replicas (as the real one refuses e.g. an image off the allowlist)."""

    async def execute(self, request: ActionRequest) -> ActionResult:
        if request.dry_run and request.parameters.get("replicas") == 7:
            self.calls.append(request)
            return ActionResult(action_id=0, status="refused", dry_run=True, plan=[], stage="preconditions",
                                message="quota exceeded: 7 replicas do not fit in namespace shop")
        return await super().execute(request)


async def test_an_override_its_dry_run_refuses_is_refused_with_the_executors_reason(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, DryRunRefuses)
    _, approval_id = await waiting(engine, db, confidence=0.75)
    error = await refused(engine, approval_id, True, who("alice"), {"replicas": 7},
                          match="dry-run of scale_deployment .* was refused: quota exceeded")
    assert error.status == 422
    assert [c.parameters for c in executor.calls if c.dry_run][-1] == {"replicas": 7}
    assert await db.pool.fetchval("SELECT status FROM approvals") == "pending"
    assert [r["refusal"] for r in await refusals(db)] == ["override_dry_run"]
    await db.close()


async def test_an_override_that_raises_the_risk_needs_the_second_approver_for_the_same_plan(fresh_dsn: str) -> None:
    engine, db, executor = await make_engine(fresh_dsn, approvals={"two_person_for": ["high"]})
    workflow_id, approval_id = await waiting(engine, db, confidence=0.75)
    assert await db.pool.fetchval("SELECT approvals_required FROM approvals") == 1  # replicas 4: medium risk

    first = await engine.decide(approval_id, True, who("alice"), "stop it", {"replicas": 0}, SOURCE)
    assert first["status"] == "pending" and first["override_parameters"] == {"replicas": 0}
    error = await refused(engine, approval_id, True, who("bob"), {"replicas": 1}, match="approve it as it is")
    assert error.status == 409
    second = await engine.decide(approval_id, True, who("bob"), None, None, SOURCE)
    assert second["status"] == "approved" and second["override_parameters"] == {"replicas": 0}
    assert await run_to_rest(engine, workflow_id) == "completed"
    assert [c.parameters for c in executor.calls if not c.dry_run] == [{"replicas": 0}]
    await db.close()
