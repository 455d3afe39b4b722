"""Which objects an action may address: the target's kind, scope and name against the Kubernetes grammar."""

from __future__ import annotations

import re

from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.execution.catalog.grammar import DNS_LABEL_RE, DNS_SUBDOMAIN_RE, KIND_RE
from kubernaut.execution.catalog.hygiene import bad_char, safe_repr
from kubernaut.execution.catalog.plan import API_VERSIONS
from kubernaut.models.resource import ResourceRef

# Kinds whose involvement makes any mutation need a human (Node, StatefulSet): both carry state or
# capacity that many workloads depend on.
# The target kinds of an action that reads any object (collect_diagnostics, notify_only).
ANY_KIND = ("*",)

SENSITIVE_KINDS = frozenset({"Node", "StatefulSet"})

_DNS_LABEL = re.compile(DNS_LABEL_RE)
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_RE)
_KIND = re.compile(KIND_RE)
# Any object name the API server accepts at all (path segment rules), for wildcard targets whose
# kind may use a laxer grammar than DNS subdomains (e.g. ClusterRole "system:node").
_ANY_NAME = re.compile(r"^[^/%\s]{1,253}$")


def check_target(action: str, target_kinds: tuple[str, ...], target: ResourceRef) -> ResourceRef:
    """Refuse targets this action cannot act on, before anything talks to the API server.

    Names are checked against the Kubernetes grammar here (ResourceRef only bounds lengths)
    because they come from alert labels and end up in URLs, plans and audit lines.
    """
    if not isinstance(target, ResourceRef):
        raise CatalogError(f"{action}: target must be a ResourceRef, got {type(target).__name__}")
    kind = target.kind
    any_kind = target_kinds == ANY_KIND
    if not any_kind and kind not in target_kinds:
        raise CatalogError(
            f"{action}: target kind {safe_repr(kind)} is not accepted (accepted: {', '.join(target_kinds)})"
        )
    if not _KIND.fullmatch(kind):
        raise CatalogError(f"{action}: target kind {safe_repr(kind)} is not a Kubernetes kind")
    namespace = target.namespace
    if kind == "Namespace":
        # Namespace-wide actions address the namespace by name; tolerate it repeated in namespace.
        if namespace is not None and namespace != target.name:
            raise CatalogError(
                f"{action}: target Namespace {safe_repr(target.name)} has a different namespace field "
                f"{safe_repr(namespace)}"
            )
        namespace = None
    elif target.cluster_scoped:
        if namespace:
            raise CatalogError(
                f"{action}: {kind} is cluster-scoped; target namespace must be empty, got {safe_repr(namespace)}"
            )
    elif not namespace:
        raise CatalogError(
            f"{action}: target {kind} {safe_repr(target.name)} is namespaced; namespace is missing"
        )
    if namespace is not None and not _DNS_LABEL.fullmatch(namespace):
        raise CatalogError(f"{action}: target namespace {safe_repr(namespace)} is not a valid namespace name")
    name_re = _DNS_LABEL if kind == "Namespace" else _DNS_SUBDOMAIN
    if kind in API_VERSIONS or not any_kind:
        valid = bool(name_re.fullmatch(target.name))
    else:
        valid = (
            bool(_ANY_NAME.fullmatch(target.name))
            and target.name not in (".", "..")
            and not any(bad_char(ch, "") for ch in target.name)
        )
    if not valid:
        raise CatalogError(f"{action}: target name {safe_repr(target.name)} is not a valid {kind} name")
    return target
