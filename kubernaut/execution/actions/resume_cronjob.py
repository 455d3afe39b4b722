"""resume_cronjob: Resume a suspended CronJob."""

from __future__ import annotations

from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import Risk, ref
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.operations.jobs import _Suspend
from kubernaut.models.resource import ResourceRef


def _plan_resume(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (report missed schedules: startingDeadlineSeconds decides whether they run)",
        f"PATCH {ref(target)} spec.suspend=false",
    ]


class ResumeCronJob(_Suspend):
    name = "resume_cronjob"
    suspend = False


SPEC = ActionSpec(
    name="resume_cronjob",
    summary="Resume a suspended CronJob.",
    params=NoParams,
    target_kinds=("CronJob",),
    risk=Risk.LOW,
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
    family=Family.JOB,
    operation=ResumeCronJob(),
)
