"""Actions on batch workloads: CronJob schedules and re-running a failed Job."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, StringConstraints

from kubernaut.execution.catalog.base import (
    DNS_LABEL_RE,
    ActionParams,
    ActionSpec,
    CatalogError,
    NoParams,
    RbacRule,
    Risk,
    ref,
    reject_whitespace,
)
from kubernaut.models.finding import OWNED_ELSEWHERE
from kubernaut.models.finding import FindingKind as K
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


def _plan_suspend(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (record spec.suspend for the inverse)",
        f"PATCH {ref(target)} spec.suspend=true",
    ]


def _plan_resume(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (report missed schedules: startingDeadlineSeconds decides whether they run)",
        f"PATCH {ref(target)} spec.suspend=false",
    ]


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


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="suspend_cronjob",
        helps_when=(),
        harmful_when=(),
        summary="Suspend a CronJob so no new runs start; running Jobs continue.",
        params=NoParams,
        target_kinds=("CronJob",),
        risk=Risk.LOW,
        mutates=True,
        sensitive=False,
        preconditions=("the CronJob is not already suspended",),
        when_to_use=(
            "Each run fails or harms something (overloads a database, piles up failed Jobs, fills a volume) "
            "and further runs should stop until fixed."
        ),
        when_not_to_use=(
            "Do not suspend jobs whose skipped runs cause data loss or compliance gaps (backups, billing) "
            "without a human decision. Do not use to stop the Job currently running (it continues)."
        ),
        verification="spec.suspend is true and no new Job is created at the next scheduled time.",
        inverse="resume_cronjob",
        inverse_note="resume_cronjob on the same CronJob",
        rbac=(RbacRule("batch", "cronjobs", ("get", "patch")),),
        planner=_plan_suspend,
    ),
    ActionSpec(
        name="resume_cronjob",
        helps_when=(),
        harmful_when=(),
        summary="Resume a suspended CronJob.",
        params=NoParams,
        target_kinds=("CronJob",),
        risk=Risk.LOW,
        mutates=True,
        sensitive=False,
        preconditions=("the CronJob is suspended", "the cause of the failures has been fixed"),
        when_to_use="After suspend_cronjob, once the job's problem is fixed.",
        when_not_to_use=(
            "Do not resume while runs would still fail. Beware of a burst of missed runs when "
            "startingDeadlineSeconds is large."
        ),
        verification="spec.suspend is false and the next scheduled run completes successfully.",
        inverse="suspend_cronjob",
        inverse_note="suspend_cronjob on the same CronJob",
        rbac=(RbacRule("batch", "cronjobs", ("get", "patch")),),
        planner=_plan_resume,
    ),
    ActionSpec(
        name="rerun_job",
        helps_when=(K.JOB_FAILED_INFRASTRUCTURE,),
        harmful_when=(K.OOM_KILLED, K.CONFIG_MISSING, K.CRASH_ON_CONFIG, K.COMMAND_NOT_FOUND, K.CRASH,
                      *OWNED_ELSEWHERE),
        summary="Create a new Job from a failed Job's template (or a CronJob's jobTemplate) and run it once.",
        params=RerunJobParams,
        target_kinds=("Job", "CronJob"),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the job is idempotent (safe to run again)",
            "the failure was transient (node loss, dependency outage, eviction)",
            "no other run of the same job is active",
        ),
        when_to_use=(
            "A Job (or a CronJob's last run) failed for a transient reason (BackoffLimitExceeded after a "
            "dependency outage, node lost) and its work is still needed before the next schedule."
        ),
        when_not_to_use=(
            "Do not rerun non-idempotent jobs (schema migrations, payments, notifications) without a human. "
            "Do not rerun when the failure is deterministic (bad config, bad image, OOMKilled: raise memory "
            "in the template instead)."
        ),
        verification="The new Job reaches Complete (status.succeeded >= completions).",
        inverse=None,
        inverse_note="none: the work the Job did cannot be undone; the new Job object remains for inspection",
        rbac=(
            RbacRule("batch", "jobs", ("get", "list", "watch", "create")),
            RbacRule("batch", "cronjobs", ("get",)),
        ),
        planner=_plan_rerun,
        check=_check_rerun,
    ),
)
