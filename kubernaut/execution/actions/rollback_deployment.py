"""rollback_deployment: Roll a Deployment back to its previous (or a given) revision."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft, ref
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import (
    annotations,
    merge_patch,
    meta,
    rollout_state,
    selector_string,
    with_rv,
)
from kubernaut.models.resource import ResourceRef

OOM_GUARD = (
    "Do not roll back when containers are OOMKilled: the previous revision needs the same memory; raise it "
    "with increase_memory_limits instead."
)


class RollbackParams(ActionParams):
    """Omitting the revision means 'the one before the current', which is what operators mean
    nine times out of ten; an explicit one is for skipping several bad revisions."""

    to_revision: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="deployment.kubernetes.io/revision to restore; omitted = previous.",
    )


def _plan_rollback(target: ResourceRef, params: RollbackParams) -> PlanDraft:
    which = f"revision {params.to_revision}" if params.to_revision else "the revision before the current one"
    return PlanDraft(
        steps=[
            f"GET {ref(target)} (record the current deployment.kubernetes.io/revision for the inverse)",
            f"LIST apps/v1 ReplicaSet in namespace {target.namespace} owned by the Deployment; pick {which}",
            f"PATCH {ref(target)} spec.template=<template of the chosen ReplicaSet, pod-template-hash removed>",
            f"WATCH {ref(target)} until the rollout completes (status.updatedReplicas == spec.replicas, all ready)",
        ]
    )


REVISION = "deployment.kubernetes.io/revision"


class RollbackDeployment(Operation):
    name = "rollback_deployment"

    async def prepare(self, ctx: Context, target: ResourceRef, params: RollbackParams,
                      undo: dict[str, Any] | None) -> Prepared:
        dep = await must_get(ctx, target)
        spec = dep.get("spec") or {}
        if spec.get("paused"):
            raise Refused("the Deployment is paused: resume_rollout first (a paused Deployment ignores the rollback)")
        current = int(annotations(dep).get(REVISION) or 0)
        by_revision = await self._revisions(ctx, target, dep)
        if params.to_revision is not None:
            chosen = params.to_revision
            if chosen == current:
                raise Refused(f"revision {chosen} is the current revision: nothing to roll back")
            if chosen not in by_revision:
                raise Refused(f"revision {chosen} no longer exists (revisionHistoryLimit); available: "
                              f"{sorted(by_revision) or 'none'}")
        else:
            older = [r for r in by_revision if r < current]
            if not older:
                raise Refused(f"no revision before the current one ({current}) is left to roll back to")
            chosen = max(older)
        rs = by_revision[chosen]
        template = _template_of(rs)
        if _same_template(template, spec.get("template") or {}):
            raise Refused(f"revision {chosen} has the same pod template as the current one: nothing would change")
        body = with_rv(dep, {"spec": {"template": merge_patch(spec.get("template") or {}, template)}})
        write = Write("patch", "Deployment", target.name, target.namespace, body, "merge", before=dep)
        return Prepared([write], {"revision": current, "to_revision": chosen, "replicaset": meta(rs)["name"]},
                        {"to_revision": chosen, "replicaset": meta(rs)["name"]})

    @staticmethod
    async def _revisions(ctx: Context, target: ResourceRef, dep: dict[str, Any]) -> dict[int, dict[str, Any]]:
        selector = selector_string((dep.get("spec") or {}).get("selector"))
        owned = [
            rs for rs in await ctx.kube.list("ReplicaSet", target.namespace, label_selector=selector or None)
            if any(o.get("uid") == meta(dep)["uid"] for o in meta(rs).get("ownerReferences") or [])
        ]
        return {int(annotations(rs).get(REVISION) or 0): rs for rs in owned if annotations(rs).get(REVISION)}

    def inverse(self, target: ResourceRef, params: RollbackParams, record: dict[str, Any]) -> dict[str, Any] | None:
        if not record.get("revision"):
            return None
        return self.inverse_request(self.name, target, {"to_revision": record["revision"]})

    async def verify(self, ctx: Context, target: ResourceRef, params: RollbackParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        dep = await must_get(ctx, target)
        rs = await ctx.kube.get_or_none("ReplicaSet", after["replicaset"], target.namespace)
        if rs is None:
            return Verification(False, [f"ReplicaSet {after['replicaset']} of the restored revision is gone"])
        if not _same_template(_template_of(rs), (dep.get("spec") or {}).get("template") or {}):
            return Verification(False, ["the Deployment's template no longer matches the restored revision"])
        done, text = rollout_state(dep)
        return Verification(done, [f"template is that of ReplicaSet {after['replicaset']}", text])


def _template_of(rs: dict[str, Any]) -> dict[str, Any]:
    template = dict((rs.get("spec") or {}).get("template") or {})
    tmeta = dict(template.get("metadata") or {})
    tlabels = {k: v for k, v in (tmeta.get("labels") or {}).items() if k != "pod-template-hash"}
    tmeta["labels"] = tlabels
    template["metadata"] = tmeta
    return template


def _same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def norm(t: dict[str, Any]) -> dict[str, Any]:
        t = dict(t)
        m = {k: v for k, v in (t.get("metadata") or {}).items() if v not in (None, {}, [])}
        m.pop("creationTimestamp", None)
        t["metadata"] = m
        return t
    return norm(a) == norm(b)


SPEC = declared(__name__, params=RollbackParams, planner=_plan_rollback, operation=RollbackDeployment())
