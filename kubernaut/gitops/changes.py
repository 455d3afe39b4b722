"""The fields a spec-changing action sets, in the terms of a manifest: what the change in Git edits.

Derived from the action's own plan as its server-side dry-run recorded it (``ActionResult.after``: what the
action will set, e.g. ``{"container": "app", "limit": "512Mi"}``) and its parameters, so the Git change
is exactly what the live change would have been.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

# Scalar values only: a manifest field is set to a string, a number, a boolean or removed (None).
Value = str | int | float | bool | None


class FieldChange(BaseModel):
    """One field of one object. ``field`` is a logical name: ``replicas``, ``containers.<c>.image``,
    ``containers.<c>.resources.limits.memory``, ``minReplicas``, ``maxReplicas``, ``minAvailable``,
    ``maxUnavailable``, ``suspend``; the manifest editor turns it into a path for the object's kind."""

    model_config = ConfigDict(frozen=True)

    kind: str
    name: str
    namespace: str | None
    field: str
    value: Value
    container: str | None = None


class NoGitForm(ValueError):
    """The action (or what its dry-run recorded) cannot be expressed as manifest fields."""


def changes_for(action: str, target_kind: str, target_name: str, namespace: str | None, parameters: dict[str, Any],
                after: dict[str, Any] | None, *, images: dict[str, str] | None = None) -> list[FieldChange]:
    """The field changes of ``action`` on the target. ``images``: for rollback_deployment, container → image of
    the revision rolled back to (the previous revision's images, from the context)."""
    after = after or {}

    def one(field: str, value: Value, *, kind: str = target_kind, name: str = target_name,
            container: str | None = None) -> FieldChange:
        return FieldChange(kind=kind, name=name, namespace=namespace, field=field, value=value, container=container)

    if action in ("scale_deployment", "scale_statefulset"):
        replicas = after.get("replicas", parameters.get("replicas"))
        if not isinstance(replicas, int):
            raise NoGitForm(f"{action}: no replica count recorded")
        return [one("replicas", replicas)]
    if action in ("increase_memory_limits", "increase_cpu_limits"):
        resource = "memory" if action == "increase_memory_limits" else "cpu"
        container, limit = after.get("container"), after.get("limit")
        if not container or not limit:
            raise NoGitForm(f"{action}: the dry-run recorded no container/limit")
        return [one(f"containers.{container}.resources.limits.{resource}", str(limit), container=str(container))]
    if action == "set_image":
        container, image = after.get("container") or parameters.get("container"), after.get("image") or \
            parameters.get("image")
        if not container or not image:
            raise NoGitForm("set_image: no container/image")
        return [one(f"containers.{container}.image", str(image), container=str(container))]
    if action == "rollback_deployment":
        if not images:
            raise NoGitForm("rollback_deployment: the images of the previous revision are not known")
        return [one(f"containers.{c}.image", img, container=c) for c, img in sorted(images.items())]
    if action == "update_hpa":
        hpa = after.get("hpa")
        if not hpa:
            raise NoGitForm("update_hpa: the dry-run recorded no HPA")
        return [one("minReplicas", int(after["min_replicas"]), kind="HorizontalPodAutoscaler", name=str(hpa)),
                one("maxReplicas", int(after["max_replicas"]), kind="HorizontalPodAutoscaler", name=str(hpa))]
    if action == "relax_pdb":
        return [one("minAvailable", after.get("min_available")), one("maxUnavailable", after.get("max_unavailable"))]
    if action == "suspend_cronjob":
        return [one("suspend", True)]
    raise NoGitForm(f"{action} has no form in Git")
