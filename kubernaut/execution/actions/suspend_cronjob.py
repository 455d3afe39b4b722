"""suspend_cronjob: Suspend a CronJob so no new runs start; running Jobs continue."""

from __future__ import annotations

from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import Risk, ref
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.operations.jobs import _Suspend
from kubernaut.models.resource import ResourceRef


def _plan_suspend(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (record spec.suspend for the inverse)",
        f"PATCH {ref(target)} spec.suspend=true",
    ]


class SuspendCronJob(_Suspend):
    name = "suspend_cronjob"
    suspend = True


SPEC = ActionSpec(
    name="suspend_cronjob",
    summary="Suspend a CronJob so no new runs start; running Jobs continue.",
    params=NoParams,
    target_kinds=("CronJob",),
    risk=Risk.LOW,
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
    family=Family.JOB,
    operation=SuspendCronJob(),
)
