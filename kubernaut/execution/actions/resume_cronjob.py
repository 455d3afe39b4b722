"""resume_cronjob: Resume a suspended CronJob."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
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


SPEC = declared(__name__, params=NoParams, planner=_plan_resume, operation=ResumeCronJob())
