"""CronJob suspend/resume and re-running a Job from its own template (nothing else can be injected)."""

from __future__ import annotations

import copy
from typing import Any

from kubernaut.execution.catalog import NoParams, RerunJobParams
from kubernaut.execution.operations.base import (
    Context,
    Operation,
    Prepared,
    Refused,
    Verification,
    Write,
    labels,
    meta,
    must_get,
    with_rv,
)
from kubernaut.models.resource import ResourceRef

RERUN_OF = "kubernaut.ai/rerun-of"
# Labels the Job controller derives from the old Job's uid and name: copied, they would select the
# old Job's pods or be rejected by validation.
_CONTROLLER_LABELS = (
    "controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name",
)


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
    return out or "0"


class _Suspend(Operation):
    suspend: bool

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        cron = await must_get(ctx, target)
        current = bool((cron.get("spec") or {}).get("suspend"))
        if current == self.suspend:
            raise Refused(f"CronJob {target.namespace}/{target.name} is already "
                          f"{'suspended' if current else 'running on schedule'}")
        notes = []
        if not self.suspend:
            last = (cron.get("status") or {}).get("lastScheduleTime")
            deadline = (cron.get("spec") or {}).get("startingDeadlineSeconds")
            notes.append(f"last scheduled run {last or 'never'}; missed runs start now only within "
                         f"startingDeadlineSeconds={deadline if deadline is not None else 'unset (up to 100 missed)'}")
        write = Write("patch", "CronJob", target.name, target.namespace,
                      with_rv(cron, {"spec": {"suspend": self.suspend}}), before=cron)
        return Prepared([write], {"suspend": current}, {"suspend": self.suspend}, notes)

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        other = "resume_cronjob" if self.suspend else "suspend_cronjob"
        return {"action": other, "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        cron = await must_get(ctx, target)
        current = bool((cron.get("spec") or {}).get("suspend"))
        return Verification(current == self.suspend, [f"spec.suspend={str(current).lower()}"])


class SuspendCronJob(_Suspend):
    name = "suspend_cronjob"
    suspend = True


class ResumeCronJob(_Suspend):
    name = "resume_cronjob"
    suspend = False


def _finished(job: dict[str, Any]) -> str | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


class RerunJob(Operation):
    name = "rerun_job"

    async def prepare(self, ctx: Context, target: ResourceRef, params: RerunJobParams,
                      undo: dict[str, Any] | None) -> Prepared:
        source = await must_get(ctx, target)
        if target.kind == "CronJob":
            active = (source.get("status") or {}).get("active") or []
            if active:
                raise Refused(f"CronJob {target.name} has {len(active)} active Job(s) "
                              f"({', '.join(a.get('name', '?') for a in active)}): one run at a time")
            template = copy.deepcopy((source.get("spec") or {}).get("jobTemplate") or {})
            job_labels = dict((template.get("metadata") or {}).get("labels") or {})
            job_spec = template.get("spec") or {}
        else:
            state = _finished(source)
            if state is None:
                raise Refused(f"Job {target.name} has neither completed nor failed: it is still running")
            job_labels = dict(labels(source))
            job_spec = copy.deepcopy(source.get("spec") or {})
        suffix = params.suffix or f"rerun-{_base36(int(ctx.clock().timestamp()))}"
        name = f"{target.name}-{suffix}"
        if await ctx.kube.get_or_none("Job", name, target.namespace) is not None:
            raise Refused(f"a Job named {name} already exists: choose another suffix")
        for key in ("selector", "manualSelector"):
            job_spec.pop(key, None)
        pod_meta = (job_spec.get("template") or {}).setdefault("metadata", {})
        pod_meta["labels"] = {k: v for k, v in (pod_meta.get("labels") or {}).items() if k not in _CONTROLLER_LABELS}
        body = {
            "metadata": {
                "name": name,
                "labels": {k: v for k, v in job_labels.items() if k not in _CONTROLLER_LABELS},
                "annotations": {RERUN_OF: f"{target.kind}/{target.name}"},
            },
            "spec": job_spec,
        }
        write = Write("create", "Job", name, target.namespace, body)
        return Prepared([write], {"source": f"{target.kind}/{target.name}", "source_uid": meta(source).get("uid")},
                        {"job": name})

    async def verify(self, ctx: Context, target: ResourceRef, params: RerunJobParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        job = await ctx.kube.get_or_none("Job", after["job"], target.namespace)
        if job is None:
            return Verification(False, [f"Job {after['job']} does not exist"])
        state = _finished(job)
        status = job.get("status") or {}
        counts = " ".join(f"{key}={status.get(key, 0)}" for key in ("succeeded", "failed", "active"))
        if state == "Complete":
            return Verification(True, [f"Job {after['job']} completed", counts])
        if state == "Failed":
            return Verification(False, [f"Job {after['job']} failed", counts])
        return Verification(None, [f"Job {after['job']} is still running", counts])


OPERATIONS = (SuspendCronJob(), ResumeCronJob(), RerunJob())
