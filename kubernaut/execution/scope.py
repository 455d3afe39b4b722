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


class ObjectScope:
    """The scope rule applied to each object an action touches besides its target (the pods a drain
    evicts, the claims a cleanup deletes, the pods diagnostics read): every one is decided on its own
    labels and its namespace's, with each namespace read once per action."""

    def __init__(self, kube: Kube, config: ExecutionConfig) -> None:
        self.kube = kube
        self.config = config
        self._namespaces: dict[str, dict | None] = {}

    async def decide(self, kind: str, obj: dict) -> ScopeDecision:
        """Raises KubeError / KubeUnreachable when a namespace cannot be read (the action then fails)."""
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace")
        target = ResourceRef(kind=kind, name=metadata.get("name") or "?", namespace=namespace)
        ns = None
        if namespace is not None and namespace not in self.config.managed_namespaces:
            if namespace not in self._namespaces:
                self._namespaces[namespace] = await self.kube.get_or_none("Namespace", namespace)
            ns = self._namespaces[namespace]
        return decide(target, object_labels=_labels(obj), namespace_labels=_labels(ns),
                      namespace_exists=ns is not None, managed_label=self.config.managed_label,
                      managed_namespaces=self.config.managed_namespaces)

    async def split(self, kind: str, objs: list[dict]) -> tuple[list[dict], list[tuple[dict, ScopeDecision]]]:
        """(managed objects, [(unmanaged object, why)]) in the given order."""
        managed: list[dict] = []
        unmanaged: list[tuple[dict, ScopeDecision]] = []
        for obj in objs:
            decision = await self.decide(kind, obj)
            if decision.managed:
                managed.append(obj)
            else:
                unmanaged.append((obj, decision))
        return managed, unmanaged
