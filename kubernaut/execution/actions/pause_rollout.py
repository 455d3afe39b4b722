"""pause_rollout: Pause a Deployment's rollout so a bad revision stops spreading."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Context, Refused
from kubernaut.execution.operations.flags import SpecFlag
from kubernaut.execution.operations.objects import rollout_state
from kubernaut.models.resource import ResourceRef


def _plan_pause(target: ResourceRef, params: NoParams) -> list[str]:
    return [f"GET {ref(target)}", f"PATCH {ref(target)} spec.paused=true"]


class PauseRollout(SpecFlag):
    async def check(self, ctx: Context, target: ResourceRef, obj: Obj, undo: dict[str, Any] | None) -> list[str]:
        done, text = rollout_state(obj)
        # Restoring a recorded pause (the inverse of resume_rollout) needs no rollout in flight.
        if done is True and undo is None:
            raise Refused(f"no rollout is in progress ({text}): nothing to pause; use rollback_deployment "
                          "for a completed bad rollout")
        return []


OPERATION = PauseRollout("pause_rollout", field="paused", value=True, undone_by="resume_rollout",
                         refusal="Deployment {namespace}/{name} is already paused")


SPEC = declared(__name__, params=NoParams, planner=_plan_pause, operation=OPERATION)
