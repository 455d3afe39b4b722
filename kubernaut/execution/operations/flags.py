"""Actions that set one boolean field of an object's spec and are undone by the action that sets it back:
cordon/uncordon (Node spec.unschedulable), pause/resume rollout (Deployment spec.paused), suspend/resume
(CronJob spec.suspend)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.catalog import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write, must_get
from kubernaut.execution.operations.objects import with_rv
from kubernaut.models.resource import ResourceRef


class SpecFlag(Operation):
    """Refused when the field already has the value; the patch carries the resourceVersion read.

    ``refusal`` names the target as ``{name}`` and ``{namespace}``. ``clear``: the false value is written
    as a removal (null), as ``kubectl uncordon`` and ``kubectl rollout resume`` leave the object.
    """

    def __init__(self, name: str, *, field: str, value: bool, undone_by: str, refusal: str,
                 clear: bool = False) -> None:
        self.name = name  # type: ignore[misc]
        self.field = field
        self.value = value
        self.undone_by = undone_by
        self.refusal = refusal
        self.clear = clear

    def plan(self, target: ResourceRef, params: ActionParams) -> list[str]:
        """The plan of an action with no precondition beyond the field (cordon_node, suspend_cronjob)."""
        return [
            f"GET {ref(target)} (record spec.{self.field} for the inverse)",
            f"PATCH {ref(target)} spec.{self.field}={str(self.value).lower()}",
        ]

    def current(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get(self.field))

    async def check(self, ctx: Context, target: ResourceRef, obj: Obj, undo: dict[str, Any] | None) -> list[str]:
        """Preconditions beyond the field itself (raise Refused); returns notes for the result."""
        return []

    async def prepare(self, ctx: Context, target: ResourceRef, params: ActionParams,
                      undo: dict[str, Any] | None) -> Prepared:
        obj = await must_get(ctx, target)
        current = self.current(obj)
        if current == self.value:
            raise Refused(self.refusal.format(name=target.name, namespace=target.namespace))
        notes = await self.check(ctx, target, obj, undo)
        written = None if self.clear and not self.value else self.value
        write = Write("patch", target.kind, target.name, target.namespace,
                      with_rv(obj, {"spec": {self.field: written}}), before=obj)
        return Prepared([write], {self.field: current}, {self.field: self.value}, notes)

    def inverse(self, target: ResourceRef, params: ActionParams, record: dict[str, Any]) -> dict[str, Any] | None:
        return self.inverse_request(self.undone_by, target)

    async def verify(self, ctx: Context, target: ResourceRef, params: ActionParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        current = self.current(await must_get(ctx, target))
        return Verification(current == self.value, [f"spec.{self.field}={str(current).lower()}"])
