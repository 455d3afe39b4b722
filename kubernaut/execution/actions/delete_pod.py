"""delete_pod: Delete one pod, controller-managed or not (e.g. a pod stuck Terminating or a failed bare pod)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.catalog.pods import RestartPodParams, _grace
from kubernaut.execution.operations.base import Context, Operation, Prepared, Verification, Write
from kubernaut.execution.operations.objects import meta
from kubernaut.execution.operations.pods import _prepare_pod, _verify_replaced
from kubernaut.models.resource import ResourceRef


class DeletePodParams(RestartPodParams):
    """Same knobs as restart_pod; a separate class so the schema and audit name the action."""


def _plan_delete(target: ResourceRef, params: DeletePodParams) -> PlanDraft:
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record uid, ownerReferences and manifest)",
            f"DELETE {ref(target)}{_grace(params)} preconditions.uid=<recorded uid>",
        ],
        warnings=["a pod without a controller is not recreated: deleting it is permanent"],
    )


class DeletePod(Operation):
    name = "delete_pod"

    async def prepare(self, ctx: Context, target: ResourceRef, params: DeletePodParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pod, record = await _prepare_pod(ctx, target, need_controller=False, action=self.name)
        notes = [] if record["owner"] else ["the pod has no controller: it is gone for good once deleted"]
        # Kept for humans: a bare pod cannot be recreated by anything else.
        record["manifest"] = {k: pod.get(k) for k in ("apiVersion", "kind", "metadata", "spec")}
        record["manifest"]["metadata"] = {k: v for k, v in meta(pod).items() if k != "managedFields"}
        write = Write("delete", "Pod", target.name, target.namespace, before=pod, uid=record["uid"],
                      grace_period_seconds=params.grace_period_seconds)
        return Prepared([write], record, {"deleted_uid": record["uid"]}, notes)

    async def verify(self, ctx: Context, target: ResourceRef, params: DeletePodParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        if record.get("owner"):
            return await _verify_replaced(ctx, target, record)
        current = await ctx.kube.get_or_none("Pod", target.name, target.namespace)
        if current is not None and meta(current).get("uid") == record["uid"]:
            return Verification(None, [f"pod uid {record['uid']} still exists (terminating)"])
        return Verification(True, [f"pod uid {record['uid']} no longer exists"])


SPEC = declared(__name__, params=DeletePodParams, planner=_plan_delete, operation=DeletePod())
