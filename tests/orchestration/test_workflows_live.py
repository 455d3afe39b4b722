"""Live workflows against the real control plane: the orchestrator's engine driving the real executor
(as the executor's RBAC identity). A crash loop after a bad image is rolled back and verified; a
remediation whose verification fails is undone by its inverse and escalated; an approval gates a
change until a human decides."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from kubernaut.config import load_config
from kubernaut.models.principal import Principal, Role
from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.engine import TERMINAL, ApprovalError, WorkflowEngine
from kubernaut.storage.jobs import Reschedule
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    Harness,
    admin_fixture,
    container,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    pods,
    wait_rollout,
    workload,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s

ALICE = Principal(name="alice", method="kubernetes", roles=frozenset({Role.APPROVER})).model_dump(mode="json")


def engine_for(h: Harness, **orchestration: Any) -> WorkflowEngine:
    config = load_config({"execution": {"mode": "live"}, "orchestration": {
        "stabilization_s": 0, "verify_interval_s": 0.5, "verify_timeout_s": 60, "autonomy_min_cases": 0,
        "autonomy_min_lower_bound": 0, "cooldown_s": 0, **orchestration}})
    return WorkflowEngine(h.db, h.executor, config)


async def seed(h: Harness, action: str, target: ResourceRef, parameters: dict[str, Any], *,
               environment: str = "staging", confidence: float = 0.9) -> int:
    incident = await h.db.pool.fetchval(
        """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                  environment, priority, severity)
           VALUES ($1, $2, $3, $4, 'kubernetes', ARRAY['KubePodCrashLooping'], $5, 'P2', 'critical') RETURNING id""",
        uuid.uuid4().hex, target.kind, target.name, target.namespace, environment)
    return await h.db.pool.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
           VALUES ($1, 'rules', $2, $3, $4, $5, 'test scenario') RETURNING id""",
        incident, action, parameters, target.model_dump(), confidence)


async def drive(engine: WorkflowEngine, workflow_id: int, *, until: tuple[str, ...] = TERMINAL,
                timeout: float = 120) -> str:
    """Advance the workflow like the job worker does, honouring its waits, until it reaches ``until``."""
    deadline = time.monotonic() + timeout
    while True:
        wait = 0.0
        try:
            await engine.advance(workflow_id)
        except Reschedule as again:
            wait = again.delay_s
        phase = await engine.db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id)
        if phase in until:
            return phase
        if time.monotonic() > deadline:
            raise AssertionError(f"workflow {workflow_id} still {phase} after {timeout}s")
        await asyncio.sleep(min(max(wait, 0.05), 1.0))


async def test_crashloop_after_a_bad_image_is_rolled_back_verified_and_completed(harness: Harness) -> None:
    ns, admin = harness.namespace, harness.admin
    body = workload("Deployment", "web", replicas=2, containers=[container("app", "registry.local/web:1.0")])
    await create_ready(admin, "Deployment", ns, body)
    # A new revision with a bad image: its pods crash-loop (simulated kubelet).
    await admin.patch("Deployment", "web", ns, {"spec": {"template": {
        "metadata": {"annotations": {SIM_STATE: "CrashLoopBackOff"}},
        "spec": {"containers": [{"name": "app", "image": "registry.local/web:2.0-broken"}]}}}})

    async def crashing() -> bool:
        return any(any((s.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
                       for s in (p.get("status") or {}).get("containerStatuses") or [])
                   for p in await pods(admin, ns, "web"))

    await eventually(crashing, timeout=60, what="the new revision crash-looping")

    engine = engine_for(harness)
    target = ResourceRef(kind="Deployment", name="web", namespace=ns)
    workflow_id = await engine.start(await seed(harness, "rollback_deployment", target, {}))
    assert await drive(engine, workflow_id) == "completed"

    steps = [r["name"] for r in await harness.db.pool.fetch(
        "SELECT name FROM workflow_steps WHERE workflow_id = $1 ORDER BY seq", workflow_id)]
    assert steps == ["policy", "dry_run:0", "execute:0", "verify:0", "notify"]
    deployment = await wait_rollout(admin, "Deployment", ns, "web")
    template = deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "registry.local/web:1.0"
    assert SIM_STATE not in (template["metadata"].get("annotations") or {})
    executed = await harness.db.pool.fetchrow(
        "SELECT * FROM actions WHERE workflow_id = $1 AND NOT dry_run", workflow_id)
    assert executed["status"] == "succeeded" and executed["diff"]


async def test_failed_verification_is_undone_by_the_inverse_and_escalated(harness: Harness) -> None:
    ns, admin = harness.namespace, harness.admin
    # Pods that never become ready: scaling up cannot fix this workload.
    body = workload("Deployment", "api", replicas=1, template_annotations={SIM_STATE: "NotReady"})
    await admin.create("Deployment", ns, body)
    await eventually(lambda: _count(admin, ns, "api", 1), timeout=60, what="the first pod")

    engine = engine_for(harness, verify_timeout_s=3)
    target = ResourceRef(kind="Deployment", name="api", namespace=ns)
    workflow_id = await engine.start(await seed(harness, "scale_deployment", target, {"replicas": 3}))
    assert await drive(engine, workflow_id) == "rolled_back"

    deployment = await admin.get("Deployment", "api", ns)
    assert deployment["spec"]["replicas"] == 1  # the inverse restored the recorded before-state
    error = await harness.db.pool.fetchval("SELECT error FROM workflows WHERE id = $1", workflow_id)
    assert "verification of scale_deployment failed" in error and "escalated" in error
    events = [r["event"] for r in await harness.db.pool.fetch(
        "SELECT event FROM notifications WHERE incident_id = (SELECT incident_id FROM workflows WHERE id = $1)",
        workflow_id)]
    assert "workflow.rolled_back" in events


async def test_approval_gates_the_change_until_a_human_decides(harness: Harness) -> None:
    ns, admin = harness.namespace, harness.admin
    await create_ready(admin, "Deployment", ns, workload("Deployment", "shop", replicas=1))
    engine = engine_for(harness)
    target = ResourceRef(kind="Deployment", name="shop", namespace=ns)
    workflow_id = await engine.start(await seed(harness, "scale_deployment", target, {"replicas": 3},
                                                environment="production", confidence=0.75))
    assert await drive(engine, workflow_id, until=("awaiting_approval",)) == "awaiting_approval"
    before = await admin.get("Deployment", "shop", ns)
    assert before["spec"]["replicas"] == 1  # nothing happens while waiting
    approval = await harness.db.pool.fetchrow("SELECT * FROM approvals WHERE workflow_id = $1", workflow_id)
    assert approval["dry_run_diff"] and "replicas" in approval["dry_run_diff"]

    decided = await engine.decide(approval["id"], True, ALICE, "capacity for the sale", {"replicas": 2},
                                  {"address": "10.1.2.3", "user_agent": "pytest"})
    assert decided["decided_by"] == "kubernetes:alice" and decided["decided_address"] == "10.1.2.3"
    # The override was dry-run again by the real executor, against the API server, before it counted.
    rehearsal = await harness.db.pool.fetchrow("SELECT * FROM actions WHERE id = $1",
                                               decided["votes"][0]["dry_run_action_id"])
    assert rehearsal["dry_run"] and rehearsal["status"] == "dry_run" and rehearsal["parameters"] == {"replicas": 2}
    assert await drive(engine, workflow_id) == "completed"
    after = await wait_rollout(admin, "Deployment", ns, "shop")
    assert after["spec"]["replicas"] == 2  # the approved override, not the proposal


async def test_an_override_to_an_image_off_the_allowlist_is_refused_and_one_on_it_runs_live(
        make_harness: Any, kube_namespace: str) -> None:
    harness = await make_harness(image_registries=["registry.local"])
    ns, admin = kube_namespace, harness.admin
    await create_ready(admin, "Deployment", ns, workload(
        "Deployment", "pay", replicas=1, containers=[container("app", "registry.local/pay:1.0")]))
    engine = engine_for(harness)
    target = ResourceRef(kind="Deployment", name="pay", namespace=ns)
    workflow_id = await engine.start(await seed(harness, "set_image", target,
                                                {"container": "app", "image": "registry.local/pay:1.1"}))
    assert await drive(engine, workflow_id, until=("awaiting_approval",)) == "awaiting_approval"
    approval_id = await harness.db.pool.fetchval("SELECT id FROM approvals WHERE workflow_id = $1", workflow_id)

    with pytest.raises(ApprovalError, match=r"not on execution\.image_registries") as refused:
        await engine.decide(approval_id, True, ALICE, None, {"image": "ghcr.io/evil/pay:1.1"})
    assert refused.value.status == 422
    assert await harness.db.pool.fetchval("SELECT status FROM approvals WHERE id = $1", approval_id) == "pending"
    assert (await admin.get("Deployment", "pay", ns))["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "registry.local/pay:1.0"

    await engine.decide(approval_id, True, ALICE, "the hotfix build", {"image": "registry.local/pay:1.2"})
    assert await drive(engine, workflow_id) == "completed"
    after = await wait_rollout(admin, "Deployment", ns, "pay")
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/pay:1.2"


async def _count(admin: Any, ns: str, app: str, n: int) -> bool:
    return len(await pods(admin, ns, app)) >= n
