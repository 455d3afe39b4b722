"""Workload controllers: rollout restart, scale, rollback, pause/resume, set image."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog import ScaleParams
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import meta, with_rv
from kubernaut.models.resource import ResourceRef


class Scale(Operation):
    """scale_deployment and scale_statefulset: the /scale subresource, refused under an HPA."""

    def __init__(self, name: str) -> None:
        self.name = name  # type: ignore[misc]

    async def prepare(self, ctx: Context, target: ResourceRef, params: ScaleParams,
                      undo: dict[str, Any] | None) -> Prepared:
        await must_get(ctx, target)
        for hpa in await ctx.kube.list("HorizontalPodAutoscaler", target.namespace):
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == target.kind and ref.get("name") == target.name:
                raise Refused(f"HorizontalPodAutoscaler {meta(hpa)['name']} manages {target.kind} {target.name} "
                              "and would undo the change: use update_hpa instead")
        scale = await ctx.kube.request("GET", (await ctx.kube.resource(target.kind)).path(
            target.namespace, target.name, "scale"))
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        if current == params.replicas:
            raise Refused(f"{target.kind} {target.namespace}/{target.name} already has {current} replicas: "
                          "nothing to change")
        body = with_rv(scale, {"spec": {"replicas": params.replicas}})
        write = Write("patch", target.kind, target.name, target.namespace, body, "merge", subresource="scale",
                      before=scale)
        return Prepared([write], {"replicas": current}, {"replicas": params.replicas})

    def inverse(self, target: ResourceRef, params: ScaleParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return self.inverse_request(self.name, target, {"replicas": record["replicas"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: ScaleParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        obj = await must_get(ctx, target)
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        want = after["replicas"]
        if spec.get("replicas") != want:
            return Verification(False, [f"spec.replicas is {spec.get('replicas')}, not {want}: changed since"])
        ready = status.get("readyReplicas") or 0
        total = status.get("replicas") or 0
        checks = [f"spec.replicas={want}", f"{ready} ready of {total} (want {want})"]
        return Verification(True if ready == want and total == want else None, checks)














