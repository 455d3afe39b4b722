"""pause_rollout: Pause a Deployment's rollout so a bad revision stops spreading."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import rollout_state, with_rv
from kubernaut.models.resource import ResourceRef


def _plan_pause(target: ResourceRef, params: NoParams) -> list[str]:
    return [f"GET {ref(target)}", f"PATCH {ref(target)} spec.paused=true"]


class PauseRollout(Operation):
    name = "pause_rollout"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        dep = await must_get(ctx, target)
        if (dep.get("spec") or {}).get("paused"):
            raise Refused(f"Deployment {target.namespace}/{target.name} is already paused")
        done, text = rollout_state(dep)
        # Restoring a recorded pause (the inverse of resume_rollout) needs no rollout in flight.
        if done is True and undo is None:
            raise Refused(f"no rollout is in progress ({text}): nothing to pause; use rollback_deployment "
                          "for a completed bad rollout")
        write = Write("patch", "Deployment", target.name, target.namespace, with_rv(dep, {"spec": {"paused": True}}),
                      before=dep)
        return Prepared([write], {"paused": False}, {"paused": True})

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": "resume_rollout", "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        paused = bool((dep.get("spec") or {}).get("paused"))
        return Verification(paused, [f"spec.paused={str(paused).lower()}"])


SPEC = declared(__name__, params=NoParams, planner=_plan_pause, operation=PauseRollout())
