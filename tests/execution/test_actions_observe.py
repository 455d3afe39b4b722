"""Read-only actions against the real API server: collect_diagnostics and notify_only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    Harness,
    PrivateNodes,
    admin_fixture,
    container,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    private_nodes_fixture,
    workload,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s


async def test_collect_diagnostics(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "fine", 1))
    await h.admin.create("Deployment", ns, workload("Deployment", "crashy", 2, template_annotations={
        SIM_STATE: "CrashLoopBackOff"}))

    async def crashing() -> bool:
        found = await h.admin.list("Pod", ns, label_selector="app=crashy")
        return len(found) == 2 and all(
            (c.get("restartCount") or 0) > 0 for p in found for c in (p.get("status") or {}).get(
                "containerStatuses") or [{}])

    await eventually(crashing, timeout=60, what="crash-looping pods")
    target = ResourceRef(kind="Deployment", name="crashy", namespace=ns)
    before = await h.admin.get("Deployment", "crashy", ns)
    result = await h.run("collect_diagnostics", target, {"tail_lines": 50})
    assert result.status == "succeeded", result
    assert "logs unavailable" in result.message  # no kubelet behind the simulated nodes: said, not hidden
    row = await h.row(result.action_id)
    bundle: dict[str, Any] = row["result"]["bundle"]
    assert bundle["object"]["metadata"]["name"] == "crashy" and "managedFields" not in bundle["object"]["metadata"]
    assert len(bundle["pods"]) == 2 and {p["name"] for p in bundle["pods"]} <= {
        p["metadata"]["name"] for p in await h.admin.list("Pod", ns, label_selector="app=crashy")}
    states = {c["reason"] for p in bundle["pods"] for c in p["containers"]}
    assert "CrashLoopBackOff" in states
    assert any(e["reason"] in ("BackOff", "Started", "Created", "Pulled", "Scheduled") for e in bundle["events"])
    assert bundle.get("logs") == {}
    outcome = await h.executor.verify(result.action_id)
    assert outcome["passed"] is True
    after = await h.admin.get("Deployment", "crashy", ns)  # a read changes nothing
    assert after["spec"] == before["spec"] and after["metadata"].get("labels") == before["metadata"].get("labels")
    assert result.inverse is None

    # Dry-run mode: reading is still allowed (it changes nothing) and says so.
    dry = await h.run("collect_diagnostics", target, {"include_logs": False}, dry_run=True)
    assert dry.status == "dry_run" and "reading changes nothing" in dry.message

    refused = await h.run("collect_diagnostics", ResourceRef(kind="Secret", name="creds", namespace=ns))
    assert refused.status == "refused" and refused.stage == "validation"


async def test_notify_only_does_nothing(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    result = await h.run("notify_only", ResourceRef(kind="Deployment", name="anything", namespace=ns),
                         {"reason": "GitOps-managed: fix it in git"})
    assert result.status == "succeeded" and result.diff is None and result.inverse is None
    outcome = await h.executor.verify(result.action_id)
    assert outcome["passed"] is None and "notification service" in outcome["checks"][0]
    dry = await h.run("notify_only", ResourceRef(kind="Cluster", name="prod"), dry_run=True)
    assert dry.status == "dry_run"


SECRET = "hunter2-s3cr3t"


def secret_container() -> dict[str, Any]:
    return {**container(), "env": [{"name": "DB_PASSWORD", "value": SECRET}, {"name": "MODE", "value": "fast"}],
            "args": ["--listen=:8080", f"--token={SECRET}", "--api-key", SECRET]}


async def test_node_diagnostics_collect_only_managed_pods_and_no_secret(harness: Harness,
                                                                         private_nodes: PrivateNodes) -> None:
    """collect_diagnostics on a Node reads each pod under the scope rule (a pod labelled out of scope is
    left out and said so), and what is stored carries no env value or secret-looking argument."""
    h, ns = harness, harness.namespace
    first, *rest = private_nodes.names
    for other in rest:
        await h.admin.patch("Node", other, None, {"spec": {"unschedulable": True}})
    try:
        for name, labels in (("ours", {}), ("fenced", {"kubernaut.ai/managed": "false"})):
            await create_ready(h.admin, "Deployment", ns, {"metadata": {"name": name}, "spec": {
                "replicas": 1, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name, **labels}}, "spec": private_nodes.pin({
                    "terminationGracePeriodSeconds": 1, "containers": [secret_container()]})}}})
    finally:
        for other in rest:
            await h.admin.patch("Node", other, None, {"spec": {"unschedulable": None}})

    result = await h.run("collect_diagnostics", ResourceRef(kind="Node", name=first), {"include_logs": False})
    assert result.status == "succeeded", result
    bundle = (await h.row(result.action_id))["result"]["bundle"]
    assert [p["name"].rsplit("-", 2)[0] for p in bundle["pods"]] == ["ours"]
    assert any("1 pod(s) outside the managed scope left out" in n for n in bundle["notes"])
    assert not any(e["object"].startswith("Pod/fenced") for e in bundle["events"])

    # The workload's own bundle holds its spec: env names and flags stay, their values do not.
    result = await h.run("collect_diagnostics", ResourceRef(kind="Deployment", name="ours", namespace=ns),
                         {"include_logs": False})
    row = await h.row(result.action_id)
    stored = json.dumps(row["result"])
    assert SECRET not in stored and "fast" not in stored
    spec = row["result"]["bundle"]["object"]["spec"]["template"]["spec"]["containers"][0]
    assert [e["name"] for e in spec["env"]] == ["DB_PASSWORD", "MODE"]
    assert spec["args"] == ["--listen=:8080", "--token=<redacted>", "--api-key", "<redacted>"]


async def test_deleted_pod_records_and_diffs_carry_no_secret(harness: Harness) -> None:
    """A bare pod's deletion keeps its manifest for humans and shows a deletion diff: both redacted,
    in the dry-run record and in the executed one."""
    h, ns = harness, harness.namespace
    await h.admin.create("Pod", ns, {"metadata": {"name": "bare", "annotations": {
        "vault.example.com/agent-token": SECRET}}, "spec": {
        "terminationGracePeriodSeconds": 0, "containers": [secret_container()]}})
    target = ResourceRef(kind="Pod", name="bare", namespace=ns)
    dry = await h.run("delete_pod", target, dry_run=True)
    result = await h.run("delete_pod", target)
    assert dry.status == "dry_run" and result.status == "succeeded", (dry, result)
    for outcome in (dry, result):
        row = await h.row(outcome.action_id)
        assert "DB_PASSWORD" in row["diff"] and "--token=<redacted>" in row["diff"]
        for field in ("diff", "before", "after", "result"):
            assert SECRET not in json.dumps(row[field], default=str), field
        assert SECRET not in json.dumps(outcome.model_dump(mode="json"))
    manifest = (await h.row(result.action_id))["before"]["manifest"]
    assert manifest["spec"]["containers"][0]["env"][0] == {"name": "DB_PASSWORD", "value": "<redacted>"}
    assert manifest["metadata"]["annotations"]["vault.example.com/agent-token"] == "<redacted>"
