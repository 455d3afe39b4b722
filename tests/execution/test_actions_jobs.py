"""Batch actions against the real API server: suspend_cronjob, resume_cronjob (each other's inverse),
rerun_job (from a Job or a CronJob's jobTemplate; no inverse)."""

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
    harness_fixture,
    make_harness_fixture,
)
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s

COMPLETE = "sim.kubernaut.io/complete"


def job_template(outcome: str | None) -> dict[str, Any]:
    annotations = {COMPLETE: outcome} if outcome else {}
    return {"backoffLimit": 0, "template": {"metadata": {"annotations": annotations}, "spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container("task", "busybox")]}}}


async def cronjob(h: Harness, name: str, suspend: bool, outcome: str | None = "true") -> dict[str, Any]:
    await h.admin.create("CronJob", h.namespace, {"metadata": {"name": name}, "spec": {
        "schedule": "17 3 * * *", "suspend": suspend, "jobTemplate": {"spec": job_template(outcome)}}})
    return await h.admin.get("CronJob", name, h.namespace)


async def job(h: Harness, name: str, outcome: str | None) -> dict[str, Any]:
    await h.admin.create("Job", h.namespace, {"metadata": {"name": name, "labels": {"team": "batch"}},
                                               "spec": job_template(outcome)})
    if outcome is None:
        return await h.admin.get("Job", name, h.namespace)

    async def finished() -> dict[str, Any] | None:
        obj = await h.admin.get("Job", name, h.namespace)
        done = [c for c in (obj.get("status") or {}).get("conditions") or [] if c["status"] == "True"]
        return obj if done else None

    return await eventually(finished, timeout=60, what=f"Job {name} finished")


async def test_suspend_and_resume_cronjob(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await cronjob(h, "paused", suspend=True)
    refused = await h.run("suspend_cronjob", ResourceRef(kind="CronJob", name="paused", namespace=ns))
    assert refused.status == "refused" and "already suspended" in refused.message
    before = await cronjob(h, "nightly", suspend=False)
    target = ResourceRef(kind="CronJob", name="nightly", namespace=ns)
    refused = await h.run("resume_cronjob", target)
    assert refused.status == "refused" and "already running on schedule" in refused.message

    await assert_dry_run_changes_nothing(h, "suspend_cronjob", target)
    result = await h.run("suspend_cronjob", target)
    assert result.status == "succeeded", result
    assert changes(before, await h.admin.get("CronJob", "nightly", ns)) == {"spec.suspend"}
    await h.verified(result)
    resumed = await h.undo(result)
    assert resumed.status == "succeeded" and "missed runs" in resumed.message, resumed
    await h.verified(resumed)
    assert (await h.admin.get("CronJob", "nightly", ns))["spec"]["suspend"] is False

    paused = ResourceRef(kind="CronJob", name="paused", namespace=ns)
    await assert_dry_run_changes_nothing(h, "resume_cronjob", paused)
    result = await h.run("resume_cronjob", paused)
    assert result.status == "succeeded", result
    await h.verified(result)
    again = await h.undo(result)
    assert again.status == "succeeded" and (await h.admin.get("CronJob", "paused", ns))["spec"]["suspend"] is True


async def test_rerun_job(make_harness: Any, kube_namespace: str) -> None:
    h = await make_harness(cooldown_s=0)  # several reruns of one source in a row
    h.namespace = ns = kube_namespace
    await job(h, "running", None)
    refused = await h.run("rerun_job", ResourceRef(kind="Job", name="running", namespace=ns))
    assert refused.status == "refused" and "still running" in refused.message

    source = await job(h, "report", "true")
    target = ResourceRef(kind="Job", name="report", namespace=ns)
    await assert_dry_run_changes_nothing(h, "rerun_job", target, {"suffix": "again"})
    assert await h.admin.get_or_none("Job", "report-again", ns) is None
    result = await h.run("rerun_job", target, {"suffix": "again"})
    assert result.status == "succeeded", result
    assert result.inverse is None
    rerun = await h.admin.get("Job", "report-again", ns)
    assert rerun["metadata"]["annotations"]["kubernaut.ai/rerun-of"] == "Job/report"
    assert rerun["metadata"]["labels"]["team"] == "batch"
    assert rerun["spec"]["template"]["spec"]["containers"] == source["spec"]["template"]["spec"]["containers"]
    await h.verified(result)
    assert (await h.admin.get("Job", "report", ns))["metadata"]["resourceVersion"] \
        == source["metadata"]["resourceVersion"]  # the source is untouched
    refused = await h.run("rerun_job", target, {"suffix": "again"})
    assert refused.status == "refused" and "already exists" in refused.message

    # From a CronJob's template, with the default suffix.
    await cronjob(h, "nightly", suspend=True)
    result = await h.run("rerun_job", ResourceRef(kind="CronJob", name="nightly", namespace=ns))
    assert result.status == "succeeded", result
    assert result.after and result.after["job"].startswith("nightly-rerun-")
    await h.verified(result)


async def test_rerun_job_verification_fails_when_the_rerun_fails(harness: Harness) -> None:
    h, ns = harness, harness.namespace
    await job(h, "flaky", "failed")
    result = await h.run("rerun_job", ResourceRef(kind="Job", name="flaky", namespace=ns), {"suffix": "retry"})
    assert result.status == "succeeded", result

    async def decided() -> dict[str, Any] | None:
        outcome = await h.executor.verify(result.action_id)
        return outcome if outcome["passed"] is not None else None

    outcome = await eventually(decided, timeout=60, what="verification decided")
    assert outcome["passed"] is False and "failed" in outcome["checks"][0]
