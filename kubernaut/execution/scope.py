"""Scope: the executor acts only where someone opted in.

Opt-in is the namespace label (``kubernaut.ai/managed: "true"``), the namespace listed in
``execution.managed_namespaces``, or the object itself labelled (the only way for cluster-scoped
objects such as Nodes). An object labelled ``"false"`` is excluded even inside a managed namespace,
so a team can fence off one workload. A refusal says exactly how to opt in.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernaut.config.settings import ExecutionConfig
from kubernaut.execution.kube import KINDS, Kube
from kubernaut.models.resource import ResourceRef


@dataclass(frozen=True)
class ScopeDecision:
    managed: bool
    reason: str


def _label(obj: dict | None, key: str) -> str | None:
    if not obj:
        return None
    return ((obj.get("metadata") or {}).get("labels") or {}).get(key)


async def check(kube: Kube, target: ResourceRef, config: ExecutionConfig) -> ScopeDecision:
    """Raises KubeError / KubeUnreachable when the answer cannot be read (recorded as a failure)."""
    key = config.managed_label
    namespace = target.name if target.kind == "Namespace" else target.namespace
    obj = None
    # Only kinds the catalog acts on are read for their own label: reading any other kind (a Secret
    # named by a hostile alert, say) just to decide the scope would itself be the overreach.
    if target.kind in KINDS and target.kind != "Namespace":
        obj = await kube.get_or_none(target.kind, target.name, target.namespace)
    own = _label(obj, key)
    if own == "false":
        return ScopeDecision(False, (
            f"{target} is labelled {key}=false: excluded from automatic remediation; remove the label "
            "(or set it to \"true\") to opt it in"
        ))
    if own == "true":
        return ScopeDecision(True, f"{target} is labelled {key}=true")
    if namespace is None:
        return ScopeDecision(False, (
            f"{target} is not managed by kubernaut: label it to opt in, e.g. "
            f"`kubectl label {target.kind.lower()} {target.name} {key}=true`"
        ))
    if namespace in config.managed_namespaces:
        return ScopeDecision(True, f"namespace {namespace} is listed in execution.managed_namespaces")
    ns = await kube.get_or_none("Namespace", namespace)
    if ns is None:
        return ScopeDecision(False, f"namespace {namespace} does not exist")
    if _label(ns, key) == "true":
        return ScopeDecision(True, f"namespace {namespace} is labelled {key}=true")
    return ScopeDecision(False, (
        f"namespace {namespace} is not managed by kubernaut. To opt in: `kubectl label namespace {namespace} "
        f"{key}=true`, or add it to execution.managed_namespaces, or label the object itself "
        f"(`kubectl label {target.kind.lower()} {target.name} -n {namespace} {key}=true`)"
    ))
