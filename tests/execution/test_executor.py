"""The executor's safety pipeline against the real API server: scope, lock, budget, idempotency,
dry-run mode, and the failures that must end clearly recorded (403, 404, 409, API unreachable)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kubernetes import client

from kubernaut.execution import locks
from kubernaut.execution.catalog import rbac_rules
from kubernaut.execution.kube import Kube
from kubernaut.models.resource import ResourceRef
from kubernaut.storage import audit
from tests.plugins.kube_testenv import KubeTestEnv
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    Harness,
    PrivateNodes,
    admin_fixture,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    private_nodes_fixture,
    workload,
)

pytestmark = pytest.mark.k8s


def deploy(name: str, ns: str) -> ResourceRef:
    return ResourceRef(kind="Deployment", name=name, namespace=ns)


async def replicas(h: Harness, name: str, ns: str) -> int:
    return (await h.admin.get("Deployment", name, ns))["spec"]["replicas"]


# -- scope ------------------------------------------------------------------------------------------


async def test_unmanaged_namespace_is_refused_with_opt_in_instructions(make_harness: Any,
                                                                        kube_api_client: client.ApiClient) -> None:
    h = await make_harness()
    ns = f"t-unmanaged-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api_client)
    core.create_namespace({"metadata": {"name": ns}})
    try:
        await h.admin.create("Deployment", ns, workload("Deployment", "web", 1))
        await h.admin.create("Deployment", ns, {**workload("Deployment", "opted", 1), "metadata": {
            "name": "opted", "labels": {"kubernaut.ai/managed": "true"}}})
        refused = await h.run("scale_deployment", deploy("web", ns), {"replicas": 2})
        assert refused.status == "refused" and refused.stage == "scope", refused
        assert f"kubectl label namespace {ns} kubernaut.ai/managed=true" in refused.message
        assert "execution.managed_namespaces" in refused.message
        assert refused.diff is None and await replicas(h, "web", ns) == 1
        assert any("PATCH" in step for step in refused.plan)  # what was asked stays on the record
        row = await h.row(refused.action_id)
        assert row["status"] == "refused" and not row["mutating"]

        # The object itself may opt in ...
        opted = await h.run("scale_deployment", deploy("opted", ns), {"replicas": 2})
        assert opted.status == "succeeded", opted
        # ... and so may the configuration.
        listed = await make_harness(managed_namespaces=[ns])
        allowed = await listed.run("scale_deployment", deploy("web", ns), {"replicas": 2})
        assert allowed.status == "succeeded", allowed
    finally:
        core.delete_namespace(ns)


async def test_object_labelled_false_is_excluded_in_a_managed_namespace(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await h.admin.create("Deployment", ns, {**workload("Deployment", "fenced", 1), "metadata": {
        "name": "fenced", "labels": {"kubernaut.ai/managed": "false"}}})
    refused = await h.run("scale_deployment", deploy("fenced", ns), {"replicas": 2})
    assert refused.status == "refused" and refused.stage == "scope" and "managed=false" in refused.message


# -- one execution per target -------------------------------------------------------------------------


async def test_concurrent_executions_on_one_target_act_once(make_harness: Any, kube_namespace: str) -> None:
    h = await make_harness(lock_wait_s=0)
    ns = kube_namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    first, second = await asyncio.gather(
        h.run("scale_deployment", deploy("web", ns), {"replicas": 2}),
        h.run("scale_deployment", deploy("web", ns), {"replicas": 3}),
    )
    outcomes = sorted([first, second], key=lambda r: r.status)
    refused, done = outcomes
    assert done.status == "succeeded" and refused.status == "refused", outcomes
    assert refused.stage in ("lock", "cooldown") and refused.retryable, refused
    assert await replicas(h, "web", ns) == done.after["replicas"]


async def test_a_busy_target_waits_then_is_refused_and_a_dead_holder_expires(make_harness: Any,
                                                                              kube_namespace: str) -> None:
    h = await make_harness(lock_wait_s=0.5, lock_ttl_s=5)
    ns = kube_namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    target = deploy("web", ns)
    # Another replica holds the target and then dies: its lease is never renewed.
    assert await locks.try_acquire(h.db.pool, target.key, action_id=None, action="rollout_restart",
                                   owner="executor@dead-replica", ttl_s=3)
    busy = await h.run("scale_deployment", target, {"replicas": 2})
    assert busy.status == "refused" and busy.stage == "lock" and busy.retryable
    assert "rollout_restart" in busy.message and "lock_wait_s" in busy.message
    assert await replicas(h, "web", ns) == 1

    patient = await make_harness(lock_wait_s=15)  # another replica, same database
    result = await patient.run("scale_deployment", target, {"replicas": 2})
    assert result.status == "succeeded", result  # waited for the dead holder's lease to expire
    assert await locks.holder(h.db.pool, target.key) is None  # released afterwards


# -- blast-radius budget ------------------------------------------------------------------------------


async def test_budget_stops_a_burst(make_harness: Any, kube_namespace: str) -> None:
    h = await make_harness(max_mutations_per_namespace=2)
    ns = kube_namespace
    for name in ("a", "b", "c"):
        await create_ready(h.admin, "Deployment", ns, workload("Deployment", name, 1))
    results = [await h.run("scale_deployment", deploy(name, ns), {"replicas": 2}) for name in ("a", "b", "c")]
    assert [r.status for r in results] == ["succeeded", "succeeded", "refused"]
    stopped = results[2]
    assert stopped.stage == "budget" and stopped.retryable and "max_mutations_per_namespace=2" in stopped.message
    assert await replicas(h, "c", ns) == 1
    # The overall cap (same database: two mutations are already counted). A refusal before any write
    # gives its slot back: a precondition refusal does not eat the budget.
    overall = await make_harness(max_mutations_per_window=3, cooldown_s=0)
    refused = await overall.run("scale_deployment", deploy("a", ns), {"replicas": 2})  # already 2: precondition
    assert refused.stage == "preconditions"
    ok = await overall.run("scale_deployment", deploy("c", ns), {"replicas": 2})
    assert ok.status == "succeeded", ok
    over = await overall.run("scale_deployment", deploy("b", ns), {"replicas": 3})
    assert over.status == "refused" and "max_mutations_per_window=3" in over.message


async def test_node_budget_caps_nodes_out_of_service(make_harness: Any, private_nodes: PrivateNodes) -> None:
    h = await make_harness(max_nodes_unavailable=1)
    first, second, _ = private_nodes.names
    await h.admin.patch("Node", first, None, {"spec": {"unschedulable": True}})
    try:
        # Other engineers' nodes may be cordoned too: the cap only gets tighter then.
        refused = await h.run("cordon_node", ResourceRef(kind="Node", name=second))
        assert refused.status == "refused" and refused.stage == "budget", refused
        assert first in refused.message and "max_nodes_unavailable=1" in refused.message
        assert not (await h.admin.get("Node", second))["spec"].get("unschedulable")
    finally:
        await h.admin.patch("Node", first, None, {"spec": {"unschedulable": None}})


# -- idempotency and modes ----------------------------------------------------------------------------


async def test_a_retried_request_returns_the_recorded_outcome_and_never_acts_twice(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    key = f"workflow-1-execute-{uuid.uuid4().hex[:6]}"
    first, concurrent = await asyncio.gather(
        h.run("restart_pod", ResourceRef(kind="Pod", name="nope", namespace=ns), key=key),
        h.run("restart_pod", ResourceRef(kind="Pod", name="nope", namespace=ns), key=key),
    )
    assert first.action_id == concurrent.action_id and first.status == concurrent.status
    key = f"workflow-2-execute-{uuid.uuid4().hex[:6]}"
    done = await h.run("rollout_restart", deploy("web", ns), key=key)
    assert done.status == "succeeded", done
    generation = (await h.admin.get("Deployment", "web", ns))["metadata"]["generation"]
    again = await h.run("rollout_restart", deploy("web", ns), key=key)
    assert again == done
    assert (await h.admin.get("Deployment", "web", ns))["metadata"]["generation"] == generation
    assert await h.db.pool.fetchval("SELECT count(*) FROM actions WHERE idempotency_key = $1", key) == 1


async def test_global_dry_run_mode_stops_after_the_server_side_dry_run(make_harness: Any,
                                                                       kube_namespace: str) -> None:
    h = await make_harness(mode="dry-run")
    ns = kube_namespace
    before = await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    result = await h.run("scale_deployment", deploy("web", ns), {"replicas": 3}, dry_run=False)
    assert result.status == "dry_run" and result.dry_run and result.stage == "dry_run", result
    assert "nothing was changed" in result.message and "+  replicas: 3" in (result.diff or "")
    after = await h.admin.get("Deployment", "web", ns)
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert (await h.executor.verify(result.action_id))["passed"] is None
    assert not (await h.row(result.action_id))["mutating"]  # a dry-run never uses the budget


async def test_without_a_cluster_only_the_plan_is_recorded(make_harness: Any) -> None:
    h = await make_harness(kube=False, mode="dry-run")
    target = deploy("web", "shop")
    planned = await h.run("scale_deployment", target, {"replicas": 3})
    assert planned.status == "dry_run" and "no cluster connection" in planned.message
    assert any("PATCH" in step for step in planned.plan) and planned.diff is None
    live = await make_harness(kube=False)
    failed = await live.run("scale_deployment", target, {"replicas": 3})
    assert failed.status == "failed" and failed.retryable and "nothing was changed" in failed.message


# -- failures that must be recorded clearly --------------------------------------------------------------


async def test_rbac_denial_is_a_clear_recorded_failure(make_harness: Any, kube_testenv: KubeTestEnv,
                                                       kube_namespace: str) -> None:
    rightless = kube_testenv.api_client(kube_testenv.rightless_kubeconfig)
    try:
        h = await make_harness(rightless)
        await create_ready(h.admin, "Deployment", kube_namespace, workload("Deployment", "web", 1))
        result = await h.run("scale_deployment", deploy("web", kube_namespace), {"replicas": 2})
        assert result.status == "failed" and not result.retryable, result
        assert "forbidden by RBAC" in result.message and result.error.startswith("403")
        assert await replicas(h, "web", kube_namespace) == 1
        row = await h.row(result.action_id)
        assert row["status"] == "failed" and row["finished_at"] is not None
    finally:
        rightless.close()


async def test_the_executor_role_is_exactly_the_catalog_rbac(executor_role: list[dict[str, Any]],
                                                             kube_api_client: client.ApiClient) -> None:
    """Every action test runs as the executor user, bound to this role: it is sufficient. Here: it is
    the generated one, and it grants nothing the catalog does not ask for (no secrets, no wildcards)."""
    role = client.RbacAuthorizationV1Api(kube_api_client).read_cluster_role("kubernaut-executor")
    got = [{"apiGroups": r.api_groups, "resources": r.resources, "verbs": r.verbs} for r in role.rules]
    assert got == rbac_rules() == executor_role
    authz = client.AuthorizationV1Api(kube_api_client)
    for verb, resource in (("get", "secrets"), ("delete", "nodes"), ("create", "pods"), ("update", "deployments")):
        review = authz.create_subject_access_review({"spec": {"user": "kubernaut-executor", "resourceAttributes": {
            "verb": verb, "resource": resource, "group": "apps" if resource == "deployments" else ""}}})
        assert not review.status.allowed, (verb, resource)


async def test_missing_target_is_a_clear_recorded_failure(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    result = await h.run("scale_deployment", deploy("ghost", ns), {"replicas": 2})
    assert result.status == "failed" and result.stage == "preconditions" and not result.retryable, result
    assert "target not found" in result.message and result.error.startswith("404")


async def test_conflicts_are_retried_then_fail_clearly(make_harness: Any, kube_namespace: str) -> None:
    ns = kube_namespace
    h = await make_harness(conflict_retries=2)
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    kube: Kube = h.executor.kube
    real_patch = kube.patch
    bumps = {"left": 0}

    async def racing_patch(kind: str, name: str, namespace: str | None, body: Any, **kw: Any) -> Any:
        # Someone else writes the object between our read and our (real) write, every time.
        if not kw.get("dry_run") and bumps["left"] > 0:
            bumps["left"] -= 1
            await h.admin.patch(kind, name, namespace, {"metadata": {"annotations": {
                "example.com/touched": uuid.uuid4().hex}}})
        return await real_patch(kind, name, namespace, body, **kw)

    kube.patch = racing_patch  # type: ignore[method-assign]
    bumps["left"] = 100
    failed = await h.run("rollout_restart", deploy("web", ns))
    assert failed.status == "failed" and failed.retryable and "conflict" in failed.message, failed
    assert "3 attempt(s)" in failed.message and failed.error.startswith("409")
    template = (await h.admin.get("Deployment", "web", ns))["spec"]["template"]
    assert "kubectl.kubernetes.io/restartedAt" not in (template["metadata"].get("annotations") or {})
    assert bumps["left"] == 97

    recovered_h = await make_harness(conflict_retries=2)
    recovered_h.executor.kube.patch = racing_patch  # type: ignore[method-assign]
    bumps["left"] = 1
    recovered = await recovered_h.run("rollout_restart", deploy("web", ns))
    assert recovered.status == "succeeded" and "after 1 conflict retry" in recovered.message, recovered


async def test_unreachable_api_is_a_clear_recorded_failure(make_harness: Any, kube_api_client: client.ApiClient
                                                           ) -> None:
    cfg = client.Configuration()
    cfg.host = "https://127.0.0.1:1"
    cfg.verify_ssl = False
    cfg.retries = 0
    dead = client.ApiClient(cfg)
    try:
        h = await make_harness(dead)
        result = await h.run("scale_deployment", deploy("web", "shop"), {"replicas": 2})
        assert result.status == "failed" and result.retryable, result
        assert "Kubernetes API unreachable" in result.message and "nothing was changed" in result.message
        verdict = await h.executor.verify(result.action_id)
        assert verdict["passed"] is False
    finally:
        dead.close()


async def test_an_interrupted_execution_is_recorded_not_repeated(make_harness: Any, kube_namespace: str) -> None:
    h = await make_harness()
    ns = kube_namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    key = f"workflow-9-execute-{uuid.uuid4().hex[:6]}"
    # A replica claimed this key, started mutating, and died (its lease already ran out).
    await h.db.pool.execute(
        """INSERT INTO actions (workflow_id, incident_id, action, target, parameters, idempotency_key, dry_run,
                                status, target_key, mutating, started_at, lease_owner, lease_until)
           VALUES ($1, $2, 'scale_deployment', $3, '{"replicas": 2}', $4, false, 'running', $5, true, now(),
                   'executor@dead', now() - interval '1 second')""",
        h.workflow_id, h.incident_id, deploy("web", ns).model_dump(), key, deploy("web", ns).key)
    result = await h.run("scale_deployment", deploy("web", ns), {"replicas": 2}, key=key)
    assert result.status == "failed" and "interrupted" in (result.error or ""), result
    assert "may or may not have been applied" in result.message
    assert await replicas(h, "web", ns) == 1  # not executed a second time


async def test_every_outcome_is_audited_in_the_hash_chain(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    done = await h.run("scale_deployment", deploy("web", ns), {"replicas": 2})
    refused = await h.run("scale_deployment", deploy("web", ns), {"replicas": 9})
    assert done.status == "succeeded" and refused.status == "refused"
    events = [r["event"] for r in await h.db.pool.fetch("SELECT event FROM audit_events ORDER BY id")]
    assert events == ["action.executing", "action.succeeded", "action.refused"]
    async with h.db.pool.acquire() as conn:
        assert await audit.verify_chain(conn) == (True, None)
