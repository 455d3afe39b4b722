"""Kubernetes label selectors: as query strings for LIST calls, and evaluated locally on labels."""

from __future__ import annotations

from typing import Any

from kubernaut.cluster.selectors import selector_query


def to_query(selector: dict[str, Any] | None) -> str | None:
    """``matchLabels`` + ``matchExpressions`` as a ``labelSelector`` query value (None: selects nothing)."""
    return selector_query(selector) or None


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether ``selector`` selects an object with ``labels``. An empty selector selects everything
    (NetworkPolicy/PDB semantics); None selects nothing."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
