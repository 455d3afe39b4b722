"""CronJob suspend/resume and re-running a Job from its own template (nothing else can be injected)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog import NoParams
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import with_rv
from kubernaut.models.resource import ResourceRef


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










