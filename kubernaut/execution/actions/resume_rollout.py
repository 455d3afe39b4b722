"""resume_rollout: Resume a paused Deployment rollout."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import rollout_state, with_rv
from kubernaut.models.resource import ResourceRef


def _plan_resume(target: ResourceRef, params: NoParams) -> list[str]:
    return [
        f"GET {ref(target)}",
        f"PATCH {ref(target)} spec.paused=false",
        f"WATCH {ref(target)} until the pending rollout completes",
    ]


class ResumeRollout(Operation):
    name = "resume_rollout"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        dep = await must_get(ctx, target)
        if not (dep.get("spec") or {}).get("paused"):
            raise Refused(f"Deployment {target.namespace}/{target.name} is not paused")
        write = Write("patch", "Deployment", target.name, target.namespace,
                      with_rv(dep, {"spec": {"paused": None}}), before=dep)
        return Prepared([write], {"paused": True}, {"paused": False})

    def inverse(self, target: ResourceRef, params: NoParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return {"action": "pause_rollout", "target": target.model_dump(), "parameters": {}}

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        if (dep.get("spec") or {}).get("paused"):
            return Verification(False, ["spec.paused is true again"])
        done, text = rollout_state(dep)
        return Verification(done, ["spec.paused=false", text])


SPEC = declared(__name__, params=NoParams, planner=_plan_resume, operation=ResumeRollout())
