"""Storage actions against the real API server: expand_pvc and cleanup_orphaned_pvcs (no inverses:
volumes never shrink and deleted claims do not come back)."""

from __future__ import annotations

from typing import Any

import pytest

from kubernaut.models.resource import ResourceRef
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    Harness,
    admin_fixture,
    assert_dry_run_changes_nothing,
    changes,
    container,
    executor_api_fixture,
    executor_role_fixture,
    frozen_clock,
    harness_fixture,
    make_harness_fixture,
)

pytestmark = pytest.mark.k8s


async def storage_class(h: Harness, name: str, expandable: bool) -> None:
    if await h.admin.get_or_none("StorageClass", name) is None:
        await h.admin.create("StorageClass", None, {"metadata": {"name": name}, "provisioner": "kubernaut.test/fake",
                                                    "allowVolumeExpansion": expandable})


async def claim(h: Harness, name: str, size: str = "1Gi", storage_class_name: str | None = None,
                bound: bool = True, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    ns = h.namespace
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class_name:
        spec["storageClassName"] = storage_class_name
    await h.admin.create("PersistentVolumeClaim", ns, {"metadata": {"name": name, **(
        {"annotations": annotations} if annotations else {})}, "spec": spec})
    if bound:  # no provisioner in the test cluster: play its part on the status
        await h.admin.patch("PersistentVolumeClaim", name, ns, {"status": {
            "phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}}},
            subresource="status")
    return await h.admin.get("PersistentVolumeClaim", name, ns)


async def test_expand_pvc(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await storage_class(h, "kx-expandable", True)
    await storage_class(h, "kx-fixed", False)
    await claim(h, "pending", storage_class_name="kx-expandable", bound=False)
    await claim(h, "fixed", storage_class_name="kx-fixed")
    before = await claim(h, "data", "1Gi", storage_class_name="kx-expandable")
    target = ResourceRef(kind="PersistentVolumeClaim", name="data", namespace=ns)

    refused = await h.run("expand_pvc", ResourceRef(kind="PersistentVolumeClaim", name="pending", namespace=ns),
                          {"new_size": "2Gi"})
    assert refused.status == "refused" and "only a Bound claim" in refused.message
    refused = await h.run("expand_pvc", ResourceRef(kind="PersistentVolumeClaim", name="fixed", namespace=ns),
                          {"new_size": "2Gi"})
    assert refused.status == "refused" and "does not allow volume expansion" in refused.message
    refused = await h.run("expand_pvc", target, {"new_size": "512Mi"})
    assert refused.status == "refused" and "never shrink" in refused.message

    await assert_dry_run_changes_nothing(h, "expand_pvc", target, {"factor": 1.5})
    result = await h.run("expand_pvc", target, {"factor": 1.5})
    assert result.status == "succeeded", result
    after = await h.admin.get("PersistentVolumeClaim", "data", ns)
    assert changes(before, after) == {"spec.resources.requests.storage"}
    assert after["spec"]["resources"]["requests"]["storage"] == "1536Mi"
    assert result.inverse is None
    pending = await h.executor.verify(result.action_id)
    assert pending["passed"] is None and "capacity still 1Gi" in " ".join(pending["checks"])
    # The volume plugin finishes the resize and reports the new capacity (played by the test).
    await h.admin.patch("PersistentVolumeClaim", "data", ns, {"status": {"capacity": {"storage": "1536Mi"}}},
                        subresource="status")
    await h.verified(result)


async def test_cleanup_orphaned_pvcs(make_harness: Any, kube_namespace: str) -> None:
    young = await make_harness()
    young.namespace = kube_namespace
    target = ResourceRef(kind="Namespace", name=kube_namespace)
    for name in ("orphan-1", "orphan-2", "mounted", "data-db-3"):
        await claim(young, name)
    await claim(young, "precious", annotations={"kubernaut.ai/keep": "true"})
    await young.admin.create("Pod", kube_namespace, {"metadata": {"name": "user"}, "spec": {
        "containers": [container()], "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "mounted"}}]}})
    await young.admin.create("StatefulSet", kube_namespace, {"metadata": {"name": "db"}, "spec": {
        "replicas": 0, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [container()]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})

    refused = await young.run("cleanup_orphaned_pvcs", target)
    assert refused.status == "refused" and "no orphaned claims" in refused.message  # all younger than 72h

    # Two hours later (an injected clock: creation times cannot be faked on the server).
    h = await make_harness(clock=frozen_clock(2 * 3600))
    h.namespace = kube_namespace
    refused = await h.run("cleanup_orphaned_pvcs", target, {"older_than_hours": 1, "max_deletions": 1})
    assert refused.status == "refused" and "exceed max_deletions=1" in refused.message
    watch = [("PersistentVolumeClaim", n, kube_namespace) for n in ("orphan-1", "orphan-2")]
    dry = await assert_dry_run_changes_nothing(h, "cleanup_orphaned_pvcs", target, {"older_than_hours": 1},
                                               watch=watch)
    assert "orphan-1" in dry.diff and "orphan-2" in dry.diff and "mounted" not in dry.diff
    result = await h.run("cleanup_orphaned_pvcs", target, {"older_than_hours": 1})
    assert result.status == "succeeded", result
    assert sorted(c["name"] for c in result.before["claims"]) == ["orphan-1", "orphan-2"]
    await h.verified(result)
    left = sorted(c["metadata"]["name"] for c in await h.admin.list("PersistentVolumeClaim", kube_namespace))
    assert left == ["data-db-3", "mounted", "precious"]
    assert result.inverse is None


async def test_cleanup_keeps_claims_of_every_template_and_the_opted_out(make_harness: Any,
                                                                         kube_namespace: str) -> None:
    """Claims named only by templates that run no pod right now (a Deployment at 0 replicas, a Job with
    parallelism 0, a suspended CronJob) are in use, and a claim labelled kubernaut.ai/managed=false is
    out of scope: only the true orphan goes."""
    h = await make_harness(clock=frozen_clock(2 * 3600))
    h.namespace = ns = kube_namespace
    target = ResourceRef(kind="Namespace", name=ns)
    for name in ("orphan", "dep-data", "job-data", "cron-data"):
        await claim(h, name)
    await h.admin.create("PersistentVolumeClaim", ns, {"metadata": {
        "name": "fenced", "labels": {"kubernaut.ai/managed": "false"}}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})

    def pod_spec(claim_name: str, restart: str = "Always") -> dict[str, Any]:
        return {"restartPolicy": restart, "containers": [container()],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim_name}}]}

    await h.admin.create("Deployment", ns, {"metadata": {"name": "dep"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "dep"}},
        "template": {"metadata": {"labels": {"app": "dep"}}, "spec": pod_spec("dep-data")}}})
    await h.admin.create("Job", ns, {"metadata": {"name": "job"}, "spec": {
        "parallelism": 0, "template": {"spec": pod_spec("job-data", "Never")}}})
    await h.admin.create("CronJob", ns, {"metadata": {"name": "cron"}, "spec": {
        "schedule": "0 3 * * *", "suspend": True,
        "jobTemplate": {"spec": {"template": {"spec": pod_spec("cron-data", "Never")}}}}})
    assert await h.admin.list("Pod", ns) == []  # nothing mounts them right now

    dry = await h.run("cleanup_orphaned_pvcs", target, {"older_than_hours": 1}, dry_run=True)
    assert dry.status == "dry_run", dry
    result = await h.run("cleanup_orphaned_pvcs", target, {"older_than_hours": 1})
    assert result.status == "succeeded", result
    assert [c["name"] for c in result.before["claims"]] == ["orphan"]
    kept = " ".join(result.before["kept"])
    for why in ("dep-data (used by Deployment dep)", "job-data (used by Job job)", "cron-data (used by CronJob cron)",
                "fenced (outside the managed scope"):
        assert why in kept, kept
    await h.verified(result)
    left = sorted(c["metadata"]["name"] for c in await h.admin.list("PersistentVolumeClaim", ns))
    assert left == ["cron-data", "dep-data", "fenced", "job-data"]
