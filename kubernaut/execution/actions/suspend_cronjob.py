"""suspend_cronjob: Suspend a CronJob so no new runs start; running Jobs continue."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
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


SPEC = declared(__name__, params=NoParams, planner=_plan_suspend, operation=SuspendCronJob())
