"""Kubernetes label selectors: as query strings for LIST calls, and evaluated locally on labels."""

from __future__ import annotations

from typing import Any

from kubernaut.cluster.selectors import selector_query
from kubernaut.context.models import PolicyBlock
from kubernaut.context.summarize import ts


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


def ingress_blocks(policies: list[dict[str, Any]], service_selector: dict[str, str], caller_labels: dict[str, str],
                   caller_ns: str | None, policy_ns: str) -> list[PolicyBlock]:
    """NetworkPolicies on a Service's pods that admit none of the caller's pods (NetworkPolicy semantics:
    once any Ingress policy selects a pod, only what some policy's rules admit gets in). A rule this
    cannot evaluate (an ipBlock, a namespaceSelector on labels not read here) counts as admitting."""
    selecting = [p for p in policies if "Ingress" in ((p.get("spec") or {}).get("policyTypes") or ["Ingress"])
                 and matches((p.get("spec") or {}).get("podSelector"), service_selector)]
    if not selecting:
        return []
    for policy in selecting:
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            peers = rule.get("from")
            if not peers:
                return []  # a rule without "from" admits every source
            for peer in peers:
                if "ipBlock" in peer:
                    return []
                ns_sel = peer.get("namespaceSelector")
                if ns_sel is not None and ns_sel != {} and caller_ns != policy_ns:
                    return []  # cannot tell without the caller namespace's labels: assume admitted
                if ns_sel is None and caller_ns != policy_ns:
                    continue  # a bare podSelector admits only the policy's own namespace
                if matches(peer.get("podSelector") if "podSelector" in peer else {}, caller_labels):
                    return []
    out = []
    for policy in selecting:
        meta = policy.get("metadata") or {}
        rules = (policy.get("spec") or {}).get("ingress") or []
        reason = "denies all ingress" if not rules else "admits only " + "; ".join(
            str((peer.get("podSelector") or {}).get("matchLabels") or peer)[:80]
            for rule in rules for peer in rule.get("from") or [])[:200]
        out.append(PolicyBlock(name=str(meta.get("name", ""))[:253], namespace=policy_ns,
                               created_at=ts(meta.get("creationTimestamp")), reason=reason))
    return out
