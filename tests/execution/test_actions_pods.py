"""Pod actions against the real API server: restart_pod, delete_pod, evict_pod (none has an inverse)."""

from __future__ import annotations

import pytest

from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    Harness,
    admin_fixture,
    assert_dry_run_changes_nothing,
    container,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    pods,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s

HOLD = "kubernaut.test/hold"


async def bare_pod(h: Harness, name: str, finalizers: list[str] | None = None) -> dict:
    ns = h.namespace
    await h.admin.create("Pod", ns, {"metadata": {"name": name, "labels": {"app": name},
                                                   **({"finalizers": finalizers} if finalizers else {})},
                                      "spec": {"terminationGracePeriodSeconds": 1, "containers": [container()]}})

    async def running() -> dict | None:
        pod = await h.admin.get("Pod", name, ns)
        return pod if (pod.get("status") or {}).get("phase") == "Running" else None

    return await eventually(running, timeout=60, what=f"pod {name} running")


async def test_restart_pod(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await bare_pod(h, "lonely")
    refused = await h.run("restart_pod", ResourceRef(kind="Pod", name="lonely", namespace=ns))
    assert refused.status == "refused" and refused.stage == "preconditions" and "no controller" in refused.message

    await create_ready(h.admin, "Deployment", ns, {
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [container()]}}}})
    victim, sibling = await pods(h.admin, ns, "web")
    target = ResourceRef(kind="Pod", name=victim["metadata"]["name"], namespace=ns)
    dry = await assert_dry_run_changes_nothing(h, "restart_pod", target)
    assert "/dev/null" in dry.diff  # the pod disappears
    result = await h.run("restart_pod", target)
    assert result.status == "succeeded", result
    assert result.inverse is None
    outcome = await h.verified(result)
    assert "0 restarts" in " ".join(outcome["checks"])
    live = await pods(h.admin, ns, "web")
    uids = {p["metadata"]["uid"] for p in live}
    assert victim["metadata"]["uid"] not in uids and sibling["metadata"]["uid"] in uids  # nothing else touched
    assert len(live) == 2


async def test_delete_pod(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    held = await bare_pod(h, "held", finalizers=[HOLD])
    await h.admin.delete("Pod", "held", ns)
    refused = await h.run("delete_pod", ResourceRef(kind="Pod", name="held", namespace=ns))
    assert refused.status == "refused" and "already terminating" in refused.message
    await h.admin.patch("Pod", "held", ns, {"metadata": {"finalizers": None}})
    assert held["metadata"]["finalizers"] == [HOLD]

    await bare_pod(h, "stray")
    other = await bare_pod(h, "bystander")
    target = ResourceRef(kind="Pod", name="stray", namespace=ns)
    await assert_dry_run_changes_nothing(h, "delete_pod", target)
    result = await h.run("delete_pod", target)
    assert result.status == "succeeded", result
    assert "gone for good" in result.message
    assert result.before and result.before["manifest"]["spec"]["containers"][0]["name"] == "app"
    await h.verified(result)
    bystander = await h.admin.get("Pod", "bystander", ns)  # nothing else touched
    assert bystander["metadata"]["uid"] == other["metadata"]["uid"]
    assert not bystander["metadata"].get("deletionTimestamp")


async def test_evict_pod(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await bare_pod(h, "lonely")
    refused = await h.run("evict_pod", ResourceRef(kind="Pod", name="lonely", namespace=ns))
    assert refused.status == "refused" and "no controller" in refused.message

    await create_ready(h.admin, "Deployment", ns, {
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [container()]}}}})
    await h.admin.create("PodDisruptionBudget", ns, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})

    async def budget_observed() -> bool:
        pdb = await h.admin.get("PodDisruptionBudget", "web", ns)
        return (pdb.get("status") or {}).get("currentHealthy") == 2

    await eventually(budget_observed, timeout=30, what="PDB status")
    victim = (await pods(h.admin, ns, "web"))[0]
    target = ResourceRef(kind="Pod", name=victim["metadata"]["name"], namespace=ns)
    blocked = await h.run("evict_pod", target)
    # The PDB forbids it: a clear, retryable failure at the dry-run, and the pod is untouched.
    assert blocked.status == "failed" and blocked.retryable and "PodDisruptionBudget" in blocked.message, blocked
    assert blocked.stage == "dry_run"
    assert (await h.admin.get("Pod", target.name, ns))["metadata"].get("deletionTimestamp") is None

    await h.admin.patch("PodDisruptionBudget", "web", ns, {"spec": {"minAvailable": 1}})

    async def allows() -> bool:
        pdb = await h.admin.get("PodDisruptionBudget", "web", ns)
        return (pdb.get("status") or {}).get("disruptionsAllowed", 0) >= 1

    await eventually(allows, timeout=30, what="PDB allowing one disruption")
    await assert_dry_run_changes_nothing(h, "evict_pod", target)
    result = await h.run("evict_pod", target)
    assert result.status == "succeeded", result
    await h.verified(result)
