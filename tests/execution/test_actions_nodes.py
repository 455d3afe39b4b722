"""Node actions against the real API server, on private simulated nodes (never the shared ones):
cordon_node, uncordon_node, taint_node, remove_taint, drain_node (evictions only, PDBs respected)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    PRIVATE_TAINT,
    Harness,
    PrivateNodes,
    admin_fixture,
    assert_dry_run_changes_nothing,
    changes,
    container,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    pods,
    private_nodes_fixture,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s


def node(name: str) -> ResourceRef:
    return ResourceRef(kind="Node", name=name)


@pytest_asyncio.fixture(loop_scope="session")
async def nodes(harness: Harness, private_nodes: PrivateNodes) -> AsyncIterator[PrivateNodes]:
    """The private nodes, reset after each test to schedulable with only their private taint."""
    yield private_nodes
    for name in private_nodes.names:
        await harness.admin.patch("Node", name, None, {"spec": {
            "unschedulable": None,
            "taints": [{"key": PRIVATE_TAINT, "value": private_nodes.pool, "effect": "NoSchedule"}]}})


async def test_cordon_and_uncordon(harness: Harness, nodes: PrivateNodes) -> None:
    h = harness
    first, _, third = nodes.names
    await h.admin.patch("Node", third, None, {"spec": {"unschedulable": True}})
    refused = await h.run("cordon_node", node(third))
    assert refused.status == "refused" and "already cordoned" in refused.message
    refused = await h.run("uncordon_node", node(first))
    assert refused.status == "refused" and "not cordoned" in refused.message

    before = await h.admin.get("Node", first)
    await assert_dry_run_changes_nothing(h, "cordon_node", node(first))
    result = await h.run("cordon_node", node(first))
    assert result.status == "succeeded", result
    assert changes(before, await h.admin.get("Node", first)) == {"spec.unschedulable"}
    await h.verified(result)
    assert result.inverse and result.inverse["action"] == "uncordon_node"
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    assert not (await h.admin.get("Node", first))["spec"].get("unschedulable")

    # uncordon on its own, with cordon as its inverse
    await assert_dry_run_changes_nothing(h, "uncordon_node", node(third))
    result = await h.run("uncordon_node", node(third))
    assert result.status == "succeeded", result
    await h.verified(result)
    recordoned = await h.undo(result)
    assert recordoned.status == "succeeded", recordoned
    assert (await h.admin.get("Node", third))["spec"].get("unschedulable") is True


async def test_uncordon_refuses_a_node_that_is_not_ready(harness: Harness, nodes: PrivateNodes) -> None:
    h = harness
    ghost = f"{nodes.pool}-ghost"  # no kubelet behind it: never Ready
    await h.admin.create("Node", None, {"metadata": {"name": ghost, "labels": {"kubernaut.ai/managed": "true"}},
                                        "spec": {"unschedulable": True}})
    try:
        refused = await h.run("uncordon_node", node(ghost))
        assert refused.status == "refused" and "not Ready" in refused.message, refused
    finally:
        await h.admin.delete("Node", ghost, None)


async def test_taint_and_remove_taint(harness: Harness, nodes: PrivateNodes) -> None:
    h = harness
    name = nodes.names[1]
    refused = await h.run("remove_taint", node(name), {"key": "kubernaut.ai/quarantine"})
    assert refused.status == "refused" and "has no taint" in refused.message
    refused = await h.run("taint_node", node(name), {"key": PRIVATE_TAINT, "value": nodes.pool,
                                                      "effect": "NoSchedule"})
    assert refused.status == "refused" and "already has" in refused.message

    params = {"key": "kubernaut.ai/quarantine", "value": "disk", "effect": "NoSchedule"}
    before = await h.admin.get("Node", name)
    await assert_dry_run_changes_nothing(h, "taint_node", node(name), params)
    result = await h.run("taint_node", node(name), params)
    assert result.status == "succeeded", result
    after = await h.admin.get("Node", name)
    assert changes(before, after) == {"spec.taints"}
    assert {"key": "kubernaut.ai/quarantine", "value": "disk", "effect": "NoSchedule"} in after["spec"]["taints"]
    await h.verified(result)
    removed = await h.undo(result)  # remove_taint
    assert removed.status == "succeeded", removed
    await h.verified(removed)
    assert [t["key"] for t in (await h.admin.get("Node", name))["spec"]["taints"]] == [PRIVATE_TAINT]
    # ... and remove_taint's own inverse puts back exactly the removed taint.
    restored = await h.undo(removed)
    assert restored.status == "succeeded", restored
    await h.verified(restored)
    assert {"key": "kubernaut.ai/quarantine", "value": "disk", "effect": "NoSchedule"} \
        in (await h.admin.get("Node", name))["spec"]["taints"]


async def _pinned_deployment(h: Harness, nodes: PrivateNodes, name: str, replicas: int) -> list[dict[str, Any]]:
    """Pods of a Deployment all on the first private node (the others cordoned while it starts)."""
    first, *rest = nodes.names
    for other in rest:
        await h.admin.patch("Node", other, None, {"spec": {"unschedulable": True}})
    await create_ready(h.admin, "Deployment", h.namespace, {"metadata": {"name": name}, "spec": {
        "replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": nodes.pin({
            "terminationGracePeriodSeconds": 1, "containers": [container()]})}}})
    for other in rest:
        await h.admin.patch("Node", other, None, {"spec": {"unschedulable": None}})
    placed = await pods(h.admin, h.namespace, name)
    assert {p["spec"]["nodeName"] for p in placed} == {first}
    return placed


@contextlib.asynccontextmanager
async def availability_monitor(h: Harness, app: str) -> AsyncIterator[list[int]]:
    """Samples the number of Ready, non-terminating pods of `app` every 50 ms while the block runs."""
    samples: list[int] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            live = await h.admin.list("Pod", h.namespace, label_selector=f"app={app}")
            samples.append(sum(1 for p in live if not p["metadata"].get("deletionTimestamp") and any(
                c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions", []))))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.05)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        stop.set()
        await task


async def test_drain_never_drops_below_the_pdb(harness: Harness, nodes: PrivateNodes) -> None:
    h, ns = harness, harness.namespace
    first = nodes.names[0]
    original = await _pinned_deployment(h, nodes, "web", 3)
    await h.admin.create("PodDisruptionBudget", ns, {"metadata": {"name": "web"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})

    async def budget_counts() -> bool:
        pdb = await h.admin.get("PodDisruptionBudget", "web", ns)
        return (pdb.get("status") or {}).get("disruptionsAllowed") == 1

    await eventually(budget_counts, timeout=30, what="PDB allowing exactly one disruption")

    dry = await assert_dry_run_changes_nothing(h, "drain_node", node(first), watch=[("Node", first, None)])
    assert "unschedulable: true" in dry.diff

    async with availability_monitor(h, "web") as samples:
        started = time.monotonic()
        result = await h.run("drain_node", node(first), {"timeout_seconds": 120})
        took = time.monotonic() - started
    assert result.status == "succeeded", result
    assert min(samples) >= 2, f"availability dropped below the PDB's minAvailable=2: {samples}"
    assert "refused by a PodDisruptionBudget" in result.message  # it had to wait, and did not force
    moved = await pods(h.admin, ns, "web")
    assert len(moved) == 3 and first not in {p["spec"]["nodeName"] for p in moved}
    assert not ({p["metadata"]["uid"] for p in original} & {p["metadata"]["uid"] for p in moved})
    await h.verified(result)
    assert result.inverse and result.inverse["action"] == "uncordon_node"
    assert took < 120
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone


async def test_drain_refuses_bare_pods_and_times_out_without_forcing(harness: Harness, nodes: PrivateNodes) -> None:
    h, ns = harness, harness.namespace
    first = nodes.names[0]
    await h.admin.create("Pod", ns, {"metadata": {"name": "bare"}, "spec": nodes.pin({
        "nodeName": first, "terminationGracePeriodSeconds": 1, "containers": [container()]})})
    refused = await h.run("drain_node", node(first))
    assert refused.status == "refused" and "bare has no controller" in refused.message
    assert not (await h.admin.get("Node", first))["spec"].get("unschedulable")  # refused before the cordon
    await h.admin.delete("Pod", "bare", ns, grace_period_seconds=0)

    original = await _pinned_deployment(h, nodes, "stuck", 2)
    await h.admin.create("PodDisruptionBudget", ns, {"metadata": {"name": "stuck"}, "spec": {
        "minAvailable": 2, "selector": {"matchLabels": {"app": "stuck"}}}})

    async def blocking() -> bool:
        pdb = await h.admin.get("PodDisruptionBudget", "stuck", ns)
        return (pdb.get("status") or {}).get("expectedPods") == 2

    await eventually(blocking, timeout=30, what="PDB observed")
    result = await h.run("drain_node", node(first), {"timeout_seconds": 30})
    assert result.status == "failed" and result.retryable and "timed out" in result.message, result
    assert "stays cordoned" in result.message
    assert (await h.admin.get("Node", first))["spec"].get("unschedulable") is True
    still = await pods(h.admin, ns, "stuck")  # nothing was deleted around the budget
    assert {p["metadata"]["uid"] for p in still} == {p["metadata"]["uid"] for p in original}
    assert result.inverse and result.inverse["action"] == "uncordon_node"


async def test_drain_refuses_while_pods_outside_the_managed_scope_are_on_the_node(
        harness: Harness, nodes: PrivateNodes) -> None:
    """Every pod a drain evicts must be in scope on its own: a workload labelled kubernaut.ai/managed=false
    inside a managed namespace stops the whole drain (refused before the cordon, nothing evicted)."""
    h, ns = harness, harness.namespace
    first = nodes.names[0]
    await _pinned_deployment(h, nodes, "ours", 1)
    first_rest = nodes.names[1:]
    for other in first_rest:
        await h.admin.patch("Node", other, None, {"spec": {"unschedulable": True}})
    await create_ready(h.admin, "Deployment", ns, {"metadata": {"name": "fenced"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "fenced"}},
        "template": {"metadata": {"labels": {"app": "fenced", "kubernaut.ai/managed": "false"}},
                     "spec": nodes.pin({"terminationGracePeriodSeconds": 1, "containers": [container()]})}}})
    for other in first_rest:
        await h.admin.patch("Node", other, None, {"spec": {"unschedulable": None}})
    fenced = await pods(h.admin, ns, "fenced")
    assert [p["spec"]["nodeName"] for p in fenced] == [first]

    for dry_run in (True, False):
        refused = await h.run("drain_node", node(first), dry_run=dry_run)
        assert refused.status == "refused" and refused.stage == "preconditions", refused
        assert "outside the managed scope" in refused.message and fenced[0]["metadata"]["name"] in refused.message
        assert "kubernaut.ai/managed=false" in refused.message
    assert not (await h.admin.get("Node", first))["spec"].get("unschedulable")  # not even cordoned
    assert [p["metadata"]["uid"] for p in await pods(h.admin, ns, "fenced")] == [fenced[0]["metadata"]["uid"]]

    # Once the workload is back in scope, the same drain goes ahead (dry-run: the API accepts every eviction).
    await h.admin.patch("Deployment", "fenced", ns, {"spec": {"template": {"metadata": {"labels": {
        "kubernaut.ai/managed": None}}}}})

    async def rolled() -> bool:
        live = await h.admin.list("Pod", ns, label_selector="app=fenced")  # terminating ones included
        return bool(live) and all("kubernaut.ai/managed" not in p["metadata"]["labels"]
                                  and not p["metadata"].get("deletionTimestamp") for p in live)

    await eventually(rolled, timeout=60, what="fenced pods replaced without the opt-out label")

    async def only_ours() -> bool:  # earlier tests' namespaces may still be terminating on the shared node
        on_node = await h.admin.list("Pod", None, field_selector=f"spec.nodeName={first}")
        return all(p["metadata"]["namespace"] == ns for p in on_node)

    await eventually(only_ours, timeout=90, what=f"only this test's pods on {first}")
    dry = await h.run("drain_node", node(first), dry_run=True)
    assert dry.status == "dry_run", dry.message


async def test_eviction_version_comes_from_the_servers_pods_eviction_entry(harness: Harness) -> None:
    """The real server lists pods/eviction with its own group/version: v1beta1 up to 1.21, v1 from 1.22."""
    kube = harness.executor.kube
    assert kube is not None
    version = await harness.admin.request("GET", "/version")
    minor = int("".join(ch for ch in version["minor"] if ch.isdigit()))
    expected = "policy/v1beta1" if minor <= 21 else "policy/v1"
    assert await kube.eviction_version() == expected
    core = await harness.admin.request("GET", "/api/v1")
    entry = next(r for r in core["resources"] if r["name"] == "pods/eviction")
    assert f"{entry['group']}/{entry['version']}" == expected
