"""Workload actions against the real API server: rollout_restart, scale_deployment, scale_statefulset,
rollback_deployment, pause_rollout, resume_rollout, set_image.

Each: preconditions refused when unmet, dry-run changes nothing, execution changes exactly what it
should, verification passes, the inverse (where there is one) undoes it.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
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
    pods,
    wait_rollout,
    workload,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s


def ref(kind: str, name: str, ns: str) -> ResourceRef:
    return ResourceRef(kind=kind, name=name, namespace=ns)


async def test_scale_deployment(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    before = await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2))
    target = ref("Deployment", "web", ns)

    refused = await h.run("scale_deployment", target, {"replicas": 2})
    assert refused.status == "refused" and refused.stage == "preconditions" and "already has 2" in refused.message
    await h.admin.create("HorizontalPodAutoscaler", ns, {
        "metadata": {"name": "web-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 4}})
    refused = await h.run("scale_deployment", target, {"replicas": 3})
    assert refused.status == "refused" and "use update_hpa" in refused.message
    await h.admin.delete("HorizontalPodAutoscaler", "web-hpa", ns)

    dry = await assert_dry_run_changes_nothing(h, "scale_deployment", target, {"replicas": 3})
    assert "-  replicas: 2" in dry.diff and "+  replicas: 3" in dry.diff

    result = await h.run("scale_deployment", target, {"replicas": 3})
    assert result.status == "succeeded", result
    assert result.before == {"replicas": 2} and result.after == {"replicas": 3}
    after = await h.admin.get("Deployment", "web", ns)
    assert changes(before, after) == {"spec.replicas"}
    await h.verified(result)

    assert result.inverse == {"action": "scale_deployment", "target": target.model_dump(),
                              "parameters": {"replicas": 2}, "inverse_of": result.action_id}
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    assert (await h.admin.get("Deployment", "web", ns))["spec"]["replicas"] == 2


async def test_scale_statefulset(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    before = await create_ready(h.admin, "StatefulSet", ns, workload("StatefulSet", "db", 1))
    target = ref("StatefulSet", "db", ns)
    refused = await h.run("scale_statefulset", target, {"replicas": 1})
    assert refused.status == "refused" and refused.stage == "preconditions"
    await assert_dry_run_changes_nothing(h, "scale_statefulset", target, {"replicas": 2})
    result = await h.run("scale_statefulset", target, {"replicas": 2})
    assert result.status == "succeeded", result
    assert changes(before, await h.admin.get("StatefulSet", "db", ns)) == {"spec.replicas"}
    await h.verified(result)
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)


async def test_rollout_restart(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    before = await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2))
    target = ref("Deployment", "web", ns)
    old_pods = {p["metadata"]["uid"] for p in await pods(h.admin, ns, "web")}

    await h.admin.patch("Deployment", "web", ns, {"spec": {"paused": True}})
    refused = await h.run("rollout_restart", target)
    assert refused.status == "refused" and "paused" in refused.message
    await h.admin.patch("Deployment", "web", ns, {"spec": {"paused": None}})
    before = await h.admin.get("Deployment", "web", ns)

    dry = await assert_dry_run_changes_nothing(h, "rollout_restart", target)
    assert "kubectl.kubernetes.io/restartedAt" in dry.diff
    result = await h.run("rollout_restart", target)
    assert result.status == "succeeded", result
    after = await h.admin.get("Deployment", "web", ns)
    assert changes(before, after) == {"spec.template.metadata.annotations.kubectl.kubernetes.io/restartedAt"}
    await h.verified(result)
    new_pods = {p["metadata"]["uid"] for p in await pods(h.admin, ns, "web")}
    assert not (new_pods & old_pods), "every pod was replaced"
    assert result.inverse is None


async def test_rollback_deployment(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2))
    target = ref("Deployment", "web", ns)
    refused = await h.run("rollback_deployment", target)
    assert refused.status == "refused" and "no revision before" in refused.message

    await h.admin.patch("Deployment", "web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.26"}]}}}}, patch_type="strategic")
    before = await wait_rollout(h.admin, "Deployment", ns, "web")
    await assert_dry_run_changes_nothing(h, "rollback_deployment", target)
    result = await h.run("rollback_deployment", target)
    assert result.status == "succeeded", result
    after = await h.admin.get("Deployment", "web", ns)
    assert changes(before, after) == {"spec.template.spec.containers"}
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"
    await h.verified(result)
    assert result.inverse and result.inverse["parameters"] == {"to_revision": 2}
    undone = await h.undo(result)
    assert undone.status == "succeeded", undone
    await h.verified(undone)
    assert (await h.admin.get("Deployment", "web", ns))["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "nginx:1.26"


async def _stuck_rollout(h: Harness, ns: str) -> None:
    """A Deployment whose new revision never becomes Ready: a rollout stays in progress."""
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2, spec_extra={
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}))
    await h.admin.patch("Deployment", "web", ns, {"spec": {"template": {"metadata": {"annotations": {
        SIM_STATE: "NotReady"}}}}}, patch_type="strategic")


async def test_pause_and_resume_rollout(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    target = ref("Deployment", "web", ns)
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "calm", 1))
    refused = await h.run("pause_rollout", ref("Deployment", "calm", ns))
    assert refused.status == "refused" and "no rollout is in progress" in refused.message
    refused = await h.run("resume_rollout", ref("Deployment", "calm", ns))
    assert refused.status == "refused" and "not paused" in refused.message

    await _stuck_rollout(h, ns)
    before = await h.admin.get("Deployment", "web", ns)
    await assert_dry_run_changes_nothing(h, "pause_rollout", target)
    paused = await h.run("pause_rollout", target)
    assert paused.status == "succeeded", paused
    assert changes(before, await h.admin.get("Deployment", "web", ns)) == {"spec.paused"}
    await h.verified(paused)
    again = await h.run("pause_rollout", target)  # the same action on the same target, at once
    assert again.status == "refused" and again.stage == "cooldown" and again.retryable, again

    # The inverse of a pause is resume_rollout.
    resumed = await h.undo(paused)
    assert resumed.status == "succeeded" and resumed.inverse and resumed.inverse["action"] == "pause_rollout"
    assert (await h.admin.get("Deployment", "web", ns))["spec"].get("paused") in (None, False)
    async def observed() -> dict | None:
        # Under load the controller may not have observed the resume yet: that is a different "not yet".
        verdict = await h.executor.verify(resumed.action_id)
        return None if "not observed" in " ".join(verdict["checks"]) else verdict

    verdict = await eventually(observed, timeout=30, interval=0.5, what="the controller observing the resume")
    assert verdict["passed"] is None and "updated" in " ".join(verdict["checks"])  # the rollout is still stuck
    # ...and the inverse of the resume pauses it again (restoring the recorded state).
    repaused = await h.undo(resumed)
    assert repaused.status == "succeeded", repaused
    await h.verified(repaused)


async def test_resume_rollout_verifies_when_rollout_completes(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    target = ref("Deployment", "web", ns)
    await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2))
    await h.admin.patch("Deployment", "web", ns, {"spec": {"paused": True}})
    await h.admin.patch("Deployment", "web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "nginx:1.26"}]}}}}, patch_type="strategic")
    await assert_dry_run_changes_nothing(h, "resume_rollout", target)
    result = await h.run("resume_rollout", target)
    assert result.status == "succeeded", result
    await h.verified(result)


async def test_set_image(make_harness: Any, kube_namespace: str) -> None:
    # Docker Hub's official images only (execution.image_registries): anything else is refused, dry-run too.
    h, ns = await make_harness(image_registries=["docker.io/library"]), kube_namespace
    before = await create_ready(h.admin, "Deployment", ns, workload("Deployment", "web", 2, containers=[
        container("app"), container("sidecar", "busybox:1.36")]))
    target = ref("Deployment", "web", ns)
    for image in ("ghcr.io/evil/app:1.0", "evil/nginx:1.26"):
        for dry_run in (True, False):
            refused = await h.run("set_image", target, {"container": "app", "image": image}, dry_run=dry_run)
            assert refused.status == "refused" and "not on execution.image_registries" in refused.message, refused
    closed = await make_harness()  # no registry configured: set_image is disabled
    refused = await closed.run("set_image", target, {"container": "app", "image": "nginx:1.26"}, dry_run=True)
    assert refused.status == "refused" and "set_image is disabled" in refused.message, refused
    refused = await h.run("set_image", target, {"container": "nope", "image": "nginx:1.26"})
    assert refused.status == "refused" and "no container 'nope'" in refused.message
    refused = await h.run("set_image", target, {"container": "app", "image": "nginx:1.25"})
    assert refused.status == "refused" and "already runs" in refused.message

    dry = await assert_dry_run_changes_nothing(h, "set_image", target, {"container": "app", "image": "nginx:1.26"})
    assert "nginx:1.26" in dry.diff
    result = await h.run("set_image", target, {"container": "app", "image": "nginx:1.26"})
    assert result.status == "succeeded", result
    after = await h.admin.get("Deployment", "web", ns)
    assert changes(before, after) == {"spec.template.spec.containers"}
    assert [c["image"] for c in after["spec"]["template"]["spec"]["containers"]] == ["nginx:1.26", "busybox:1.36"]
    await h.verified(result)

    async def running_new_image() -> bool:
        return all(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in await pods(h.admin, ns, "web"))

    await eventually(running_new_image, timeout=60, what="pods on the new image")
    # The inverse restores the image it recorded: no allowlist entry needed (here, none is configured).
    undone = await closed.undo(result)
    assert undone.status == "succeeded", undone
    await closed.verified(undone)
    assert (await h.admin.get("Deployment", "web", ns))["spec"]["template"]["spec"]["containers"][0]["image"] \
        == "nginx:1.25"
