"""Pausing and resuming a GitOps controller's self-heal for one owner (issue 15, live-and-propose): the live fix
must not be reverted before its pull request is merged, and the controller must heal again afterwards.

Scope ``owner`` (the target is the owner): Argo CD's Application ``spec.syncPolicy.automated.selfHeal`` (new
commits are still synced with it off; only live drift is left alone); Flux's ``spec.suspend`` on the
Kustomization or HelmRelease (everything it applies stops, not only this object).

Scope ``object`` (the target is the fixed object itself, Flux Kustomizations only): kustomize-controller's
per-object annotation ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` on the in-cluster object, with which
Flux neither applies nor prunes that object while the Kustomization goes on for every other; removing it hands
the object back (the next reconciliation applies Git's state). The before-state is recorded, and the inverse
restores exactly it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from kubernaut.execution.catalog import ActionParams
from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import annotations, labels, with_rv
from kubernaut.models.resource import ResourceRef

FLUX_KINDS = ("Kustomization", "HelmRelease")
OWNER_KINDS = ("Application", *FLUX_KINDS)
# The kinds of the objects a change proposed in Git edits (kubernaut/gitops/changes.py).
OBJECT_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob", "HorizontalPodAutoscaler", "PodDisruptionBudget")
FLUX_RECONCILE = "kustomize.toolkit.fluxcd.io/reconcile"
FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/name"


class SelfHealParams(ActionParams):
    scope: Literal["owner", "object"] = Field(
        default="owner", description="owner: the target is the Argo CD Application or Flux Kustomization/"
        "HelmRelease (its self-heal or suspend); object: the target is the Flux-managed object itself, annotated "
        f"{FLUX_RECONCILE}=disabled so Flux leaves it alone and goes on with the rest")


def check_scope(target: ResourceRef, params: SelfHealParams) -> None:
    kinds = OWNER_KINDS if params.scope == "owner" else OBJECT_KINDS
    if target.kind not in kinds:
        raise CatalogError(f"scope: {params.scope} takes a target of kind {', '.join(kinds)}, not {target.kind}")


def _object_healing(obj: Obj) -> bool:
    return str(annotations(obj).get(FLUX_RECONCILE, "")).lower() != "disabled"


def healing(obj: Obj, kind: str) -> bool:
    """Whether the owner (of ``kind``) reverts live drift now."""
    spec = obj.get("spec") or {}
    if kind in FLUX_KINDS:
        return not spec.get("suspend")
    automated = (spec.get("syncPolicy") or {}).get("automated")
    return isinstance(automated, dict) and bool(automated.get("selfHeal"))


def _field(kind: str) -> str:
    return "spec.suspend" if kind in FLUX_KINDS else "spec.syncPolicy.automated.selfHeal"


def _body(kind: str, heal: bool) -> Obj:
    if kind in FLUX_KINDS:
        return {"spec": {"suspend": None if heal else True}}
    return {"spec": {"syncPolicy": {"automated": {"selfHeal": heal}}}}


class SelfHeal(Operation):
    """``heal``: the value this action sets (False: pause, True: resume)."""

    def __init__(self, name: str, *, heal: bool, undone_by: str) -> None:
        self.name = name  # type: ignore[misc]
        self.heal = heal
        self.undone_by = undone_by

    def plan(self, target: ResourceRef, params: ActionParams) -> list[str]:
        word = "resume" if self.heal else "pause"
        if getattr(params, "scope", "owner") == "object":
            value = "removed" if self.heal else "disabled"
            return [f"GET {ref(target)} (refuse unless a Flux Kustomization manages it; record the annotation)",
                    f"PATCH {ref(target)} metadata.annotations[{FLUX_RECONCILE}]={value} ({word}: Flux "
                    f"{'applies this object again' if self.heal else 'neither applies nor prunes this object'}; "
                    "the Kustomization goes on for every other object)"]
        value = ("false (unset)" if self.heal else "true") if target.kind in FLUX_KINDS else str(self.heal).lower()
        return [f"GET {ref(target)} (record whether it self-heals, for the inverse)",
                f"PATCH {ref(target)} {_field(target.kind)}={value} ({word} reverting live drift)"]

    async def prepare(self, ctx: Context, target: ResourceRef, params: ActionParams,
                      undo: dict[str, Any] | None) -> Prepared:
        obj = await must_get(ctx, target)
        if getattr(params, "scope", "owner") == "object":
            return self._prepare_object(target, obj)
        now = healing(obj, target.kind)
        if now == self.heal:
            state = "already self-heals" if now else "does not self-heal"
            raise Refused(f"{target} {state}: nothing to {'resume' if self.heal else 'pause'}")
        if (self.heal and target.kind not in FLUX_KINDS
                and not isinstance(((obj.get("spec") or {}).get("syncPolicy") or {}).get("automated"), dict)):
            # Turning a manual-sync Application into an automated one is not a resume.
            raise Refused(f"{target} has no automated sync policy: self-heal was not paused by an inverse")
        write = Write("patch", target.kind, target.name, target.namespace, with_rv(obj, _body(target.kind, self.heal)),
                      before=obj)
        return Prepared([write], {"self_heal": now}, {"self_heal": self.heal})

    def _prepare_object(self, target: ResourceRef, obj: Obj) -> Prepared:
        if not labels(obj).get(FLUX_KUSTOMIZATION):
            # Nothing else reads the annotation: on an object no Kustomization applies it would pause nothing.
            raise Refused(f"{target} is not applied by a Flux Kustomization (no {FLUX_KUSTOMIZATION} label): "
                          f"{FLUX_RECONCILE} would pause nothing")
        now = _object_healing(obj)
        if now == self.heal:
            state = "is reconciled by Flux" if now else f"has {FLUX_RECONCILE}=disabled"
            raise Refused(f"{target} already {state}: nothing to {'resume' if self.heal else 'pause'}")
        body = {"metadata": {"annotations": {FLUX_RECONCILE: None if self.heal else "disabled"}}}
        write = Write("patch", target.kind, target.name, target.namespace, with_rv(obj, body), before=obj)
        return Prepared([write], {"self_heal": now, FLUX_RECONCILE: annotations(obj).get(FLUX_RECONCILE)},
                        {"self_heal": self.heal})

    def inverse(self, target: ResourceRef, params: ActionParams, record: dict[str, Any]) -> dict[str, Any] | None:
        scope = getattr(params, "scope", "owner")
        return self.inverse_request(self.undone_by, target, {"scope": scope} if scope != "owner" else None)

    async def verify(self, ctx: Context, target: ResourceRef, params: ActionParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        if getattr(params, "scope", "owner") == "object":
            now = _object_healing(await must_get(ctx, target))
            return Verification(now == self.heal, [f"{FLUX_RECONCILE}: Flux {'reconciles' if now else 'skips'} "
                                                   f"{target.kind}/{target.name}"])
        now = healing(await must_get(ctx, target), target.kind)
        return Verification(now == self.heal, [f"{_field(target.kind)}: self-heal {'on' if now else 'paused'}"])
