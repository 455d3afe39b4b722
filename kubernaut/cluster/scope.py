"""Scope: Kubernaut acts only where someone opted in — one rule, used by the analysis and the executor.

Opt-in is the namespace label (``kubernaut.ai/managed: "true"``), the namespace listed in
``execution.managed_namespaces``, or the object itself labelled (the only way for cluster-scoped
objects such as Nodes). An object labelled ``"false"`` is excluded even inside a managed namespace,
so a team can fence off one workload. The cluster's own namespaces (kube-system, kube-public,
kube-node-lease) are in scope only when listed explicitly: a label alone is not enough.
A refusal says exactly how to opt in.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernaut.models.resource import ResourceRef

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class ScopeDecision:
    managed: bool
    reason: str


def decide(target: ResourceRef, *, object_labels: dict[str, str] | None, namespace_labels: dict[str, str] | None,
           namespace_exists: bool, managed_label: str, managed_namespaces: list[str]) -> ScopeDecision:
    key = managed_label
    namespace = target.name if target.kind == "Namespace" else target.namespace
    if namespace in SYSTEM_NAMESPACES and namespace not in managed_namespaces:
        return ScopeDecision(False, (
            f"{target} is in the system namespace {namespace}: Kubernaut acts there only when "
            "execution.managed_namespaces lists it"
        ))
    own = (object_labels or {}).get(key)
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
    if namespace in managed_namespaces:
        return ScopeDecision(True, f"namespace {namespace} is listed in execution.managed_namespaces")
    if not namespace_exists:
        return ScopeDecision(False, f"namespace {namespace} does not exist")
    if (namespace_labels or {}).get(key) == "true":
        return ScopeDecision(True, f"namespace {namespace} is labelled {key}=true")
    return ScopeDecision(False, (
        f"namespace {namespace} is not managed by kubernaut. To opt in: `kubectl label namespace {namespace} "
        f"{key}=true`, or add it to execution.managed_namespaces, or label the object itself "
        f"(`kubectl label {target.kind.lower()} {target.name} -n {namespace} {key}=true`)"
    ))
