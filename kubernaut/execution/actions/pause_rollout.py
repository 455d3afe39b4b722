"""pause_rollout: Pause a Deployment's rollout so a bad revision stops spreading."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import Risk, ref
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.execution.catalog.workloads import GITOPS_GUARD, _workload_rbac
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import rollout_state, with_rv
from kubernaut.models.finding import OWNED_ELSEWHERE
from kubernaut.models.finding import FindingKind as K
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


SPEC = ActionSpec(
    name="pause_rollout",
    helps_when=(K.ROLLOUT_SUSPECT,),
    harmful_when=(K.TARGET_HEALTHY, *OWNED_ELSEWHERE),
    summary="Pause a Deployment's rollout so a bad revision stops spreading.",
    params=NoParams,
    target_kinds=("Deployment",),
    risk=Risk.LOW,
    preconditions=("a rollout is in progress", "the Deployment is not already paused"),
    when_to_use=(
        "A rollout is progressing while new pods fail readiness or raise errors; stop it before deciding."
    ),
    when_not_to_use=(
        "Do not leave a Deployment paused: it ignores later spec changes until resumed. Not for a "
        "completed rollout (use rollback_deployment). " + GITOPS_GUARD
    ),
    verification="spec.paused is true and no further pods of the new ReplicaSet are created.",
    inverse="resume_rollout",
    inverse_note="resume_rollout on the same Deployment",
    rbac=_workload_rbac(("deployments",), ("get", "patch")),
    planner=_plan_pause,
    family=Family.WORKLOAD,
    operation=PauseRollout(),
)
