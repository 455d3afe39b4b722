"""Nodes: cordon/uncordon, taints, and a drain that only ever evicts (PodDisruptionBudgets hold)."""

from __future__ import annotations

from typing import Any


def _conditions(node: dict[str, Any]) -> dict[str, str]:
    return {c.get("type", ""): c.get("status", "") for c in (node.get("status") or {}).get("conditions") or []}


def _taints(node: dict[str, Any]) -> list[dict[str, Any]]:
    return list((node.get("spec") or {}).get("taints") or [])














