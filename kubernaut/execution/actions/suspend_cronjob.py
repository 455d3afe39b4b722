"""suspend_cronjob: Suspend a CronJob so no new runs start; running Jobs continue."""

from __future__ import annotations

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.operations.flags import SpecFlag

OPERATION = SpecFlag("suspend_cronjob", field="suspend", value=True, undone_by="resume_cronjob",
                     refusal="CronJob {namespace}/{name} is already suspended")


SPEC = declared(__name__, params=NoParams, planner=OPERATION.plan, operation=OPERATION)
