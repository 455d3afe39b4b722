"""Scope, as the executor checks it before every mutation: the rule is ``kubernaut.cluster.scope``."""

from __future__ import annotations

from kubernaut.cluster.scope import ScopeDecision, decide
from kubernaut.config.settings import ExecutionConfig
from kubernaut.execution.kube import KINDS, Kube
from kubernaut.models.resource import ResourceRef

__all__ = ["ScopeDecision", "check"]


def _labels(obj: dict | None) -> dict[str, str] | None:
    return ((obj or {}).get("metadata") or {}).get("labels") if obj else None


async def check(kube: Kube, target: ResourceRef, config: ExecutionConfig) -> ScopeDecision:
    """Raises KubeError / KubeUnreachable when the answer cannot be read (recorded as a failure)."""
    namespace = target.name if target.kind == "Namespace" else target.namespace
    obj = None
    # Only kinds the catalog acts on are read for their own label: reading any other kind (a Secret
    # named by a hostile alert, say) just to decide the scope would itself be the overreach.
    if target.kind in KINDS and target.kind != "Namespace":
        obj = await kube.get_or_none(target.kind, target.name, target.namespace)
    ns = None
    if namespace is not None and namespace not in config.managed_namespaces:
        ns = await kube.get_or_none("Namespace", namespace)
    return decide(target, object_labels=_labels(obj), namespace_labels=_labels(ns), namespace_exists=ns is not None,
                  managed_label=config.managed_label, managed_namespaces=config.managed_namespaces)
