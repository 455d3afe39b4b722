"""Pausing and resuming a GitOps controller's self-heal for one owner (issue 15, live-and-propose): the live fix
must not be reverted before its pull request is merged, and the controller must heal again afterwards.

Argo CD: the Application's ``spec.syncPolicy.automated.selfHeal`` (new commits are still synced with it off;
only live drift is left alone). Flux: ``spec.suspend`` on the Kustomization or HelmRelease (Flux has no
drift-only switch at that level). The before-state is recorded, and the inverse restores exactly it.
"""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import with_rv
from kubernaut.models.resource import ResourceRef

FLUX_KINDS = ("Kustomization", "HelmRelease")


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
        value = ("false (unset)" if self.heal else "true") if target.kind in FLUX_KINDS else str(self.heal).lower()
        return [f"GET {ref(target)} (record whether it self-heals, for the inverse)",
                f"PATCH {ref(target)} {_field(target.kind)}={value} ({word} reverting live drift)"]

    async def prepare(self, ctx: Context, target: ResourceRef, params: ActionParams,
                      undo: dict[str, Any] | None) -> Prepared:
        obj = await must_get(ctx, target)
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

    def inverse(self, target: ResourceRef, params: ActionParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return self.inverse_request(self.undone_by, target)

    async def verify(self, ctx: Context, target: ResourceRef, params: ActionParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        now = healing(await must_get(ctx, target), target.kind)
        return Verification(now == self.heal, [f"{_field(target.kind)}: self-heal {'on' if now else 'paused'}"])
