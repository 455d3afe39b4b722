"""Read-only actions against the real API server: collect_diagnostics and notify_only."""

from __future__ import annotations

from typing import Any

import pytest

from kubernaut.models.resource import ResourceRef
from tests.k8s.test_executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    Harness,
    admin_fixture,
    create_ready,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
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
