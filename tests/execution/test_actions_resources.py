"""Resource envelopes against the real API server: increase_memory_limits, increase_cpu_limits,
update_hpa, relax_pdb — each with its inverse restoring the recorded before-state."""

from __future__ import annotations

import pytest

from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    Harness,
    admin_fixture,
    assert_dry_run_changes_nothing,
    changes,
    container,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    workload,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s


def limits_of(obj: dict, name: str = "app") -> dict:
    c = next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)
    return (c.get("resources") or {}).get("limits") or {}


async def test_increase_memory_limits(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    target = ResourceRef(kind="Deployment", name="web", namespace=ns)
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "two", 1, containers=[
        container("a", limits={"memory": "64Mi"}), container("b", limits={"memory": "64Mi"})]))
    refused = await h.run("increase_memory_limits", ResourceRef(kind="Deployment", name="two", namespace=ns))
    assert refused.status == "refused" and "name one with `container`" in refused.message

    before = await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1, containers=[
        container(limits={"memory": "128Mi"}, requests={"memory": "64Mi"})]))
    refused = await h.run("increase_memory_limits", target, {"new_limit": "100Mi"})
    assert refused.status == "refused" and "would not raise" in refused.message

    # A ResourceQuota on limits.memory that the raise would exceed is a precondition, not a surprise.
    await h.admin.create("ResourceQuota", ns, {"metadata": {"name": "mem"},
                                               "spec": {"hard": {"limits.memory": "600Mi"}}})

    async def quota_counted() -> bool:
        quota = await h.admin.get("ResourceQuota", "mem", ns)
        return (quota.get("status") or {}).get("used", {}).get("limits.memory") == "256Mi"  # both Deployments

    await eventually(quota_counted, timeout=30, what="quota usage")
    # 384Mi: it would fit once the rollout is done (512Mi used), not while it surges (640Mi).
    refused = await h.run("increase_memory_limits", target, {"factor": 3.0})
    assert refused.status == "refused" and "ResourceQuota mem" in refused.message, refused

    dry = await assert_dry_run_changes_nothing(h, "increase_memory_limits", target, {"factor": 1.5})
    assert "192Mi" in dry.diff
    result = await h.run("increase_memory_limits", target, {"factor": 1.5})
    assert result.status == "succeeded", result
    after = await h.admin.get("Deployment", "web", ns)
    assert changes(before, after) == {"spec.template.spec.containers"}
    assert limits_of(after) == {"memory": "192Mi"}
    assert after["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"memory": "64Mi"}
    await h.verified(result)

    assert result.inverse and result.inverse["parameters"]["new_limit"] == "128Mi"
    # Lowering is refused for an ordinary request but accepted as the recorded inverse.
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    assert limits_of(await h.admin.get("Deployment", "web", ns)) == {"memory": "128Mi"}
    again = await h.undo(result)
    assert again.status == "refused" and "already undone" in again.message


async def test_increase_cpu_limits_without_previous_limit(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    target = ResourceRef(kind="Deployment", name="web", namespace=ns)
    before = await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1, containers=[
        container(requests={"cpu": "100m"})]))
    refused = await h.run("increase_cpu_limits", target, {"factor": 2.0, "max_limit": "50m"})
    assert refused.status == "refused" and "below the container's request" in refused.message, refused
    await assert_dry_run_changes_nothing(h, "increase_cpu_limits", target, {"factor": 2.0})
    result = await h.run("increase_cpu_limits", target, {"factor": 2.0})
    assert result.status == "succeeded", result
    after = await h.admin.get("Deployment", "web", ns)
    assert changes(before, after) == {"spec.template.spec.containers"}
    assert limits_of(after) == {"cpu": "200m"}
    await h.verified(result)
    # There was no limit before: the inverse removes ours again.
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    assert limits_of(await h.admin.get("Deployment", "web", ns)) == {}


async def test_update_hpa(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 1))
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "other", 1))
    refused = await h.run("update_hpa", ResourceRef(kind="Deployment", name="other", namespace=ns),
                          {"max_replicas": 5})
    assert refused.status == "refused" and "no HorizontalPodAutoscaler targets" in refused.message
    await h.admin.create("HorizontalPodAutoscaler", ns, {"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 1, "maxReplicas": 3}})
    target = ResourceRef(kind="Deployment", name="web", namespace=ns)
    refused = await h.run("update_hpa", target, {"min_replicas": 4})
    assert refused.status == "refused" and "would exceed maxReplicas" in refused.message

    hpa_before = await h.admin.get("HorizontalPodAutoscaler", "web", ns)
    await assert_dry_run_changes_nothing(h, "update_hpa", target, {"max_replicas_factor": 2.0},
                                         watch=[("HorizontalPodAutoscaler", "web", ns)])
    result = await h.run("update_hpa", target, {"max_replicas_factor": 2.0})
    assert result.status == "succeeded", result
    hpa = await h.admin.get("HorizontalPodAutoscaler", "web", ns)
    assert changes(hpa_before, hpa) == {"spec.maxReplicas"} and hpa["spec"]["maxReplicas"] == 6
    await h.verified(result)
    assert result.inverse and result.inverse["target"]["kind"] == "HorizontalPodAutoscaler"
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    assert (await h.admin.get("HorizontalPodAutoscaler", "web", ns))["spec"]["maxReplicas"] == 3


async def test_relax_pdb(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2))
    await h.admin.create("PodDisruptionBudget", ns, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    await h.admin.create("PodDisruptionBudget", ns, {"metadata": {"name": "loose"}, "spec": {
        "maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}})

    async def observed() -> bool:
        pdbs = [await h.admin.get("PodDisruptionBudget", n, ns) for n in ("web", "loose")]
        return all((p.get("status") or {}).get("expectedPods") == 2 for p in pdbs)

    await eventually(observed, timeout=30, what="PDB status")
    target = ResourceRef(kind="PodDisruptionBudget", name="web", namespace=ns)
    refused = await h.run("relax_pdb", ResourceRef(kind="PodDisruptionBudget", name="loose", namespace=ns),
                          {"max_unavailable": 2})
    assert refused.status == "refused" and "already allows 1 disruption" in refused.message
    refused = await h.run("relax_pdb", target, {"min_available": 2})
    assert refused.status == "refused" and "would still allow 0" in refused.message

    before = await h.admin.get("PodDisruptionBudget", "web", ns)
    await assert_dry_run_changes_nothing(h, "relax_pdb", target, {"max_unavailable": 1})
    result = await h.run("relax_pdb", target, {"max_unavailable": 1})
    assert result.status == "succeeded", result
    after = await h.admin.get("PodDisruptionBudget", "web", ns)
    assert changes(before, after) == {"spec.minAvailable", "spec.maxUnavailable"}
    await h.verified(result)
    assert result.inverse and result.inverse["parameters"] == {"min_available": 2}
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    restored = await h.admin.get("PodDisruptionBudget", "web", ns)
    assert restored["spec"].get("minAvailable") == 2 and restored["spec"].get("maxUnavailable") is None
