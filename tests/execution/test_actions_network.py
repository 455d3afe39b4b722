"""NetworkPolicy actions against the real API server: quarantine_pod (inverse: remove_network_policy,
which also lifts the pod's quarantine label) and remove_network_policy."""

from __future__ import annotations

from typing import Any

import pytest

from kubernaut.execution.catalog import quarantine_policy_name
from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    Harness,
    admin_fixture,
    assert_dry_run_changes_nothing,
    changes,
    container,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s
QUARANTINE = "kubernaut.ai/quarantine"


async def running_pod(h: Harness, name: str, labels: dict[str, str]) -> dict[str, Any]:
    await h.admin.create("Pod", h.namespace, {"metadata": {"name": name, "labels": labels}, "spec": {
        "terminationGracePeriodSeconds": 1, "containers": [container()]}})

    async def running() -> dict[str, Any] | None:
        pod = await h.admin.get("Pod", name, h.namespace)
        return pod if (pod.get("status") or {}).get("phase") == "Running" else None

    return await eventually(running, timeout=60, what=f"pod {name} running")


async def test_quarantine_pod_and_lift_it(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await running_pod(h, "suspect", {"app": "web"})
    target = ResourceRef(kind="Pod", name="suspect", namespace=ns)
    await h.admin.create("NetworkPolicy", ns, {"metadata": {"name": "allow-web"}, "spec": {
        "podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}]}]}})
    refused = await h.run("quarantine_pod", target)
    assert refused.status == "refused" and "allow-web allows ingress" in refused.message
    # Egress-only isolation is not defeated by an ingress rule.
    await h.admin.delete("NetworkPolicy", "allow-web", ns)
    before = await h.admin.get("Pod", "suspect", ns)

    dry = await assert_dry_run_changes_nothing(h, "quarantine_pod", target)
    assert "/dev/null" in dry.diff and "kubernaut-quarantine-suspect" in dry.diff
    assert await h.admin.get_or_none("NetworkPolicy", quarantine_policy_name("suspect"), ns) is None
    result = await h.run("quarantine_pod", target)
    assert result.status == "succeeded", result
    after = await h.admin.get("Pod", "suspect", ns)
    assert changes(before, after) == {f"labels.{QUARANTINE}"}
    policy = await h.admin.get("NetworkPolicy", quarantine_policy_name("suspect"), ns)
    assert policy["spec"]["podSelector"] == {"matchLabels": {QUARANTINE: "suspect"}}
    assert sorted(policy["spec"]["policyTypes"]) == ["Egress", "Ingress"]
    assert not policy["spec"].get("ingress") and not policy["spec"].get("egress")
    outcome = await h.verified(result)
    assert any("not observable" in c for c in outcome["checks"])  # honest about what the API can show

    lifted = await h.undo(result)
    assert lifted.status == "succeeded", lifted
    await h.verified(lifted)
    assert await h.admin.get_or_none("NetworkPolicy", quarantine_policy_name("suspect"), ns) is None
    assert QUARANTINE not in (await h.admin.get("Pod", "suspect", ns))["metadata"].get("labels", {})


async def test_remove_network_policy(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await h.admin.create("NetworkPolicy", ns, {"metadata": {"name": "default-deny"}, "spec": {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
    refused = await h.run("remove_network_policy", ResourceRef(kind="NetworkPolicy", name="default-deny",
                                                               namespace=ns))
    assert refused.status == "refused" and "default-deny" in refused.message

    await h.admin.create("NetworkPolicy", ns, {"metadata": {"name": "blocker"}, "spec": {
        "podSelector": {"matchLabels": {"app": "api"}}, "policyTypes": ["Egress"],
        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "nothing"}}}]}]}})
    target = ResourceRef(kind="NetworkPolicy", name="blocker", namespace=ns)
    await assert_dry_run_changes_nothing(h, "remove_network_policy", target)
    result = await h.run("remove_network_policy", target)
    assert result.status == "succeeded", result
    assert result.inverse is None
    assert result.before and result.before["manifest"]["spec"]["egress"][0]["to"][0]["podSelector"] == {
        "matchLabels": {"app": "nothing"}}  # recorded for a human to re-apply
    await h.verified(result)
    assert await h.admin.get_or_none("NetworkPolicy", "default-deny", ns) is not None
