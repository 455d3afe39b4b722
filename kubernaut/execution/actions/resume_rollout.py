"""resume_rollout: Resume a paused Deployment rollout."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import ActionParams, NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Verification, must_get
from kubernaut.execution.operations.flags import SpecFlag
from kubernaut.execution.operations.objects import rollout_state
from kubernaut.models.resource import ResourceRef


def _plan_resume(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)}",
        f"PATCH {ref(target)} spec.paused=false",
        f"WATCH {ref(target)} until the pending rollout completes",
    ]


class ResumeRollout(SpecFlag):
    async def verify(self, ctx: Context, target: ResourceRef, params: ActionParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        if self.current(dep):
            return Verification(False, ["spec.paused is true again"])
        done, text = rollout_state(dep)
        return Verification(done, ["spec.paused=false", text])


OPERATION = ResumeRollout("resume_rollout", field="paused", value=False, undone_by="pause_rollout",
                          refusal="Deployment {namespace}/{name} is not paused", clear=True)


SPEC = declared(__name__, params=NoParams, planner=_plan_resume, operation=OPERATION)
