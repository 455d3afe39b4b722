"""Nodes: cordon/uncordon, taints, and a drain that only ever evicts (PodDisruptionBudgets hold)."""

from __future__ import annotations

from typing import Any

from kubernaut.execution.kube import Obj
from kubernaut.execution.operations.base import Write
from kubernaut.execution.operations.objects import with_rv
from kubernaut.models.resource import ResourceRef


def _conditions(node: dict[str, Any]) -> dict[str, str]:
    return {c.get("type", ""): c.get("status", "") for c in (node.get("status") or {}).get("conditions") or []}


def _taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    return list((node.get("spec") or {}).get("taints") or [])


def taint_matches(taint: dict[str, Any], key: str, effect: str | None) -> bool:
    """The taint has ``key`` and, unless ``effect`` is None (any effect), ``effect``."""
    return taint.get("key") == key and (effect is None or taint.get("effect") == effect)


def set_taints(node: Obj, target: ResourceRef, taints: list[dict[str, Any]]) -> Write:
    """taint_node and remove_taint: a merge patch replaces the node's whole taint list (none: the field
    goes); the resourceVersion read makes that safe against a concurrent taint change (409 instead of
    dropping someone else's taint)."""
    return Write("patch", "Node", target.name, None, with_rv(node, {"spec": {"taints": taints or None}}), before=node)
