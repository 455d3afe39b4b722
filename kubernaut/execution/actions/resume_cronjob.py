"""resume_cronjob: Resume a suspended CronJob."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Context
from kubernaut.execution.operations.flags import SpecFlag
from kubernaut.models.resource import ResourceRef


def _plan_resume(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)} (report missed schedules: startingDeadlineSeconds decides whether they run)",
        f"PATCH {ref(target)} spec.suspend=false",
    ]


class ResumeCronJob(SpecFlag):
    async def check(self, ctx: Context, target: ResourceRef, obj: Obj, undo: dict[str, Any] | None) -> list[str]:
        last = (obj.get("status") or {}).get("lastScheduleTime")
        deadline = (obj.get("spec") or {}).get("startingDeadlineSeconds")
        return [f"last scheduled run {last or 'never'}; missed runs start now only within "
                f"startingDeadlineSeconds={deadline if deadline is not None else 'unset (up to 100 missed)'}"]


OPERATION = ResumeCronJob("resume_cronjob", field="suspend", value=False, undone_by="suspend_cronjob",
                          refusal="CronJob {namespace}/{name} is already running on schedule")


SPEC = declared(__name__, params=NoParams, planner=_plan_resume, operation=OPERATION)
