"""rollout_restart: Rolling restart of a Deployment, StatefulSet or DaemonSet (kubectl rollout restart)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import NoParams
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import annotations, meta, rollout_state, with_rv
from kubernaut.models.resource import ResourceRef


def _plan_rollout_restart(target: ResourceRef, params: NoParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record generation; refuse when paused or a rollout is already in progress)",
            f"PATCH {ref(target)} spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]=<now>",
            f"WATCH {ref(target)} until status.updatedReplicas == status.readyReplicas == spec.replicas",
        ]
    )


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def _resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        scaled = int(value[:-1]) * total
        return -(-scaled // 100) if round_up else scaled // 100
    return int(value or 0)


def _check_rollable(obj: dict[str, Any], target: ResourceRef) -> None:
    spec = obj.get("spec") or {}
    if target.kind == "Deployment":
        if spec.get("paused"):
            raise Refused(f"Deployment {target.namespace}/{target.name} is paused: resume_rollout first")
        strategy = spec.get("strategy") or {}
        replicas = spec.get("replicas", 1)
        if strategy.get("type") == "Recreate" and replicas > 0:
            raise Refused("the Deployment uses the Recreate strategy: a restart would stop every pod at once")
        max_unavailable = _resolve_int_or_percent(
            (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%"), replicas, round_up=False)
        if replicas > 0 and max_unavailable >= replicas:
            raise Refused(f"maxUnavailable ({max_unavailable}) >= replicas ({replicas}): a restart could take "
                          "every replica down at once")
    elif (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        raise Refused(f"{target.kind} uses the OnDelete update strategy: changing the template restarts nothing")
    done, text = rollout_state(obj)
    if done is None:
        raise Refused(f"a rollout is already in progress ({text})")
    if done is False:
        raise Refused(f"the current rollout failed ({text}): fix or roll back first")


class RolloutRestart(Operation):
    name = "rollout_restart"

    async def prepare(self, ctx: Context, target: ResourceRef, params: NoParams,
                      undo: dict[str, Any] | None) -> Prepared:
        obj = await must_get(ctx, target)
        _check_rollable(obj, target)
        stamp = ctx.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        previous = annotations((obj.get("spec") or {}).get("template")).get(RESTARTED_AT)
        if previous == stamp:  # two restarts within one second would be one template change
            raise Refused(f"already restarted at {stamp}")
        body = with_rv(obj, {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "strategic", before=obj)
        return Prepared([write], {"generation": meta(obj).get("generation"), "restarted_at": previous},
                        {"restarted_at": stamp})

    async def verify(self, ctx: Context, target: ResourceRef, params: NoParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        stamp = annotations((obj.get("spec") or {}).get("template")).get(RESTARTED_AT)
        if stamp != after.get("restarted_at"):
            return Verification(False, [f"template restartedAt is {stamp!r}, not ours ({after.get('restarted_at')!r}):"
                                        " the template was changed again since"])
        done, text = rollout_state(obj)
        return Verification(done, [f"template restartedAt={stamp}", text])


SPEC = declared(__name__, params=NoParams, planner=_plan_rollout_restart, operation=RolloutRestart())
