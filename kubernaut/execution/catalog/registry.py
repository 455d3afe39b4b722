"""The catalog itself: the one immutable name -> ActionSpec mapping everything else consults."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from kubernaut.execution.catalog import jobs, network, nodes, observe, pods, resources, storage, workloads
from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    CatalogError,
    RbacRule,
    UnknownActionError,
    format_validation_error,
    safe_repr,
)
from kubernaut.models.resource import ResourceRef

_FAMILIES = (pods, workloads, resources, nodes, storage, jobs, network, observe)


def _build() -> Mapping[str, ActionSpec]:
    """Fail at import, not at 3 a.m., when two modules register one name or an inverse dangles."""
    catalog: dict[str, ActionSpec] = {}
    for family in _FAMILIES:
        for spec in family.SPECS:
            if spec.name in catalog:
                raise RuntimeError(f"action {spec.name!r} registered twice")
            catalog[spec.name] = spec
    for spec in catalog.values():
        if spec.inverse is not None and spec.inverse not in catalog:
            raise RuntimeError(f"action {spec.name!r} names unknown inverse {spec.inverse!r}")
        if spec.mutates and not spec.rbac:
            raise RuntimeError(f"mutating action {spec.name!r} declares no RBAC")
    return MappingProxyType(catalog)


CATALOG: Mapping[str, ActionSpec] = _build()
ACTION_NAMES: tuple[str, ...] = tuple(CATALOG)


def get_action(name: str) -> ActionSpec:
    """Look up an action; unknown names (typos, invented actions from an LLM) get close matches."""
    if isinstance(name, str):
        spec = CATALOG.get(name)
        if spec is not None:
            return spec
        probe = name.strip().lower().replace("-", "_").replace(" ", "_")[:100]
        suggestions = difflib.get_close_matches(probe, ACTION_NAMES, n=3, cutoff=0.6)
        if probe in CATALOG and probe not in suggestions:
            suggestions.insert(0, probe)
        raise UnknownActionError(name, suggestions)
    raise CatalogError(f"action name must be a string, got {type(name).__name__}")


def validate_request(
    name: str,
    target: ResourceRef | Mapping[str, Any],
    parameters: Mapping[str, Any] | None,
) -> tuple[ActionSpec, ActionParams]:
    """The single gate for any requested action (LLM, rules, API): name, target and parameters.

    Everything it raises is a CatalogError whose message names the offending field, so it can be
    recorded on the incident and, for the LLM, fed back as a repair hint.
    """
    spec = get_action(name)
    if not isinstance(target, ResourceRef):
        if not isinstance(target, Mapping):
            raise CatalogError(f"{spec.name}: target must be an object with kind, name, namespace")
        try:
            target = ResourceRef.model_validate(dict(target))
        except ValidationError as exc:
            errors = "; ".join(f"target.{item}" for item in format_validation_error(exc).split("; "))
            raise CatalogError(f"{spec.name}: invalid target: {errors}") from None
    if parameters is not None and not isinstance(parameters, Mapping):
        raise CatalogError(f"{spec.name}: parameters must be an object, got {safe_repr(type(parameters).__name__)}")
    return spec, spec.validate(target, parameters)


def catalog_document() -> list[dict[str, Any]]:
    """Body of GET /api/v1/actions (and the LLM's action menu), in catalog order."""
    return [spec.document() for spec in CATALOG.values()]


# What the executor's safety pipeline itself reads, whatever the action: the scope check reads the
# target's namespace for the opt-in label (kubernaut.ai/managed). The Alert Processor runs under the same
# account: its optional Warning-event source (processing.events) lists and watches core/v1 Events.
PIPELINE_RBAC: tuple[RbacRule, ...] = (RbacRule("", "namespaces", ("get",)), RbacRule("", "events", ("list", "watch")))


def rbac_rules() -> list[dict[str, list[str]]]:
    """Least-privilege ClusterRole rules for the executor: the union of what the actions and the
    safety pipeline need.

    Verbs are merged per (apiGroup, resource), then resources sharing a verb set are grouped into
    one rule, so the generated manifest is short, sorted and stable across runs (diffable in git).
    """
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in PIPELINE_RBAC:
        verbs[(rule.api_group, rule.resource)].update(rule.verbs)
    for spec in CATALOG.values():
        for rule in spec.rbac:
            verbs[(rule.api_group, rule.resource)].update(rule.verbs)
    grouped: dict[tuple[str, tuple[str, ...]], list[str]] = defaultdict(list)
    for (group, resource), verb_set in verbs.items():
        grouped[(group, tuple(sorted(verb_set)))].append(resource)
    rules = [
        {"apiGroups": [group], "resources": sorted(resources_), "verbs": list(verb_list)}
        for (group, verb_list), resources_ in grouped.items()
    ]
    return sorted(rules, key=lambda r: (r["apiGroups"], r["resources"], r["verbs"]))
