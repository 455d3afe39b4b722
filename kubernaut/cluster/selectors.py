"""Kubernetes label selectors (metav1.LabelSelector) as ``labelSelector`` query strings for LIST calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_query(selector: Mapping[str, Any] | None) -> str:
    """``matchLabels`` + ``matchExpressions`` as one query string; "" when the selector is empty."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)
