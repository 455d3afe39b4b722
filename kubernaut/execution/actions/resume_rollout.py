"""resume_rollout: Resume a paused Deployment rollout."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import Risk, ref
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.catalog.workloads import _workload_rbac
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import rollout_state, with_rv
from kubernaut.models.finding import OWNED_ELSEWHERE
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


SPEC = ActionSpec(
    name="resume_rollout",
    harmful_when=(*OWNED_ELSEWHERE,),
    summary="Resume a paused Deployment rollout.",
    params=NoParams,
    target_kinds=("Deployment",),
    risk=Risk.MEDIUM,
    preconditions=("the Deployment is paused", "the reason for pausing has been fixed"),
    when_to_use="After a pause, once the new revision is known good or the template has been corrected.",
    when_not_to_use=("Do not resume while the new revision is still failing: the rollout resumes spreading it."),
    verification="spec.paused is false and the rollout completes with all pods Ready.",
    inverse="pause_rollout",
    inverse_note="pause_rollout on the same Deployment",
    rbac=_workload_rbac(("deployments",), ("get", "list", "watch", "patch")),
    planner=_plan_resume,
    family=Family.WORKLOAD,
    operation=ResumeRollout(),
)
