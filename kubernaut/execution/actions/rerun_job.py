"""rerun_job: Create a new Job from a failed Job's template (or a CronJob's jobTemplate) and run it once."""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, StringConstraints

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.execution.catalog.grammar import DNS_LABEL_RE
from kubernaut.execution.catalog.hygiene import reject_whitespace
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import labels, meta
from kubernaut.models.resource import ResourceRef

# Job names end up in the job-name label of their pods, so they must fit a label value.
JOB_NAME_MAX = 63


MAX_SUFFIX = 20


DEFAULT_SUFFIX_DESCRIPTION = "rerun-<unix time in base 36>"


Suffix = Annotated[
    str, StringConstraints(max_length=MAX_SUFFIX, pattern=DNS_LABEL_RE), BeforeValidator(reject_whitespace)
]


class RerunJobParams(ActionParams):
    """Only the suffix is settable: the new Job is an exact copy of the old template, so a rerun
    cannot be used to smuggle in a different command or image."""

    suffix: Suffix | None = Field(
        default=None,
        description=f"Appended to the source name for the new Job; omitted = {DEFAULT_SUFFIX_DESCRIPTION}.",
    )


def _check_rerun(target: ResourceRef, params: RerunJobParams) -> None:
    # The default suffix is 'rerun-' plus at most 7 base-36 digits (good until the year 4453).
    suffix_len = len(params.suffix) if params.suffix is not None else len("rerun-") + 7
    if len(target.name) + 1 + suffix_len > JOB_NAME_MAX:
        raise CatalogError(
            f"rerun_job: suffix: the new Job name {target.name}-<suffix> would exceed {JOB_NAME_MAX} "
            "characters; use a shorter suffix"
        )


def _plan_rerun(target: ResourceRef, params: RerunJobParams) -> list[str]:
    new_name = f"{target.name}-{params.suffix or DEFAULT_SUFFIX_DESCRIPTION}"
    source = "spec.jobTemplate" if target.kind == "CronJob" else "spec.template and spec settings"
    guard = (
        "refuse while another Job of this CronJob is active"
        if target.kind == "CronJob"
        else "refuse unless the Job has failed or completed"
    )
    return [
        f"GET {ref(target)} ({guard})",
        f"CREATE batch/v1 Job {target.namespace}/{new_name} from the source's {source}; selector, "
        "controller-uid/batch.kubernetes.io/controller-uid labels and status removed; annotation "
        f"kubernaut.ai/rerun-of={target.kind}/{target.name}",
        f"WATCH batch/v1 Job {target.namespace}/{new_name} until Complete or Failed",
    ]


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


SPEC = declared(__name__, params=RerunJobParams, planner=_plan_rerun, operation=RerunJob(), check=_check_rerun)
