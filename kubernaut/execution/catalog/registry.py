"""The catalog itself: the one immutable name -> ActionSpec mapping everything else consults.

It is read from the action modules: every module of ``kubernaut.execution.actions`` declares one action
as ``SPEC``, from its facts in ``<name>.yaml`` next to it and its code (catalog/declaration.py), so adding an
action is adding its module and its YAML there.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from importlib import resources
from types import MappingProxyType, ModuleType
from typing import Any

from pydantic import ValidationError

from kubernaut.execution import actions
from kubernaut.execution.catalog.errors import CatalogError, UnknownActionError
from kubernaut.execution.catalog.hygiene import safe_repr
from kubernaut.execution.catalog.params import ActionParams, format_validation_error
from kubernaut.execution.catalog.rbac import cluster_role_rules
from kubernaut.execution.catalog.spec import ActionSpec
from kubernaut.models.resource import ResourceRef
from kubernaut.observability import metrics


def action_modules() -> list[ModuleType]:
    """Every module of the actions package, imported; a YAML without its module is refused (it would be ignored)."""
    names = [info.name for info in pkgutil.iter_modules(actions.__path__)]
    stray = sorted(entry.name for entry in resources.files(actions.__name__).iterdir()
                   if entry.name.endswith(".yaml") and entry.name.removesuffix(".yaml") not in names)
    if stray:
        raise RuntimeError(f"action YAML without a module next to it: {', '.join(stray)}")
    return [importlib.import_module(f"{actions.__name__}.{name}") for name in names]


def build_catalog(modules: Iterable[ModuleType]) -> Mapping[str, ActionSpec]:
    """Fail at import, not at 3 a.m., when a module declares no action, two declare one name, an inverse
    or a prelude dangles, or a mutating action lacks RBAC or an operation."""
    specs: list[ActionSpec] = []
    for module in modules:
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, ActionSpec):
            raise RuntimeError(f"action module {module.__name__} declares no SPEC = ActionSpec(...)")
        specs.append(spec)
    catalog: dict[str, ActionSpec] = {}
    for spec in sorted(specs, key=lambda s: (s.family, s.name)):
        if spec.name in catalog:
            raise RuntimeError(f"action {spec.name!r} registered twice")
        catalog[spec.name] = spec
    for spec in catalog.values():
        if spec.inverse is not None and spec.inverse not in catalog:
            raise RuntimeError(f"action {spec.name!r} names unknown inverse {spec.inverse!r}")
        for prelude in spec.preludes:
            if prelude.action not in catalog:
                raise RuntimeError(f"action {spec.name!r} names unknown prelude {prelude.action!r}")
        if spec.mutates and not spec.rbac:
            raise RuntimeError(f"mutating action {spec.name!r} declares no RBAC")
        if spec.mutates != (spec.operation is not None):
            raise RuntimeError(f"action {spec.name!r}: an operation exactly when it mutates")
        if spec.operation is not None and spec.operation.name != spec.name:
            raise RuntimeError(f"action {spec.name!r} declares the operation of {spec.operation.name!r}")
    return MappingProxyType(catalog)


CATALOG: Mapping[str, ActionSpec] = build_catalog(action_modules())
ACTION_NAMES: tuple[str, ...] = tuple(CATALOG)
metrics.declare_actions(ACTION_NAMES)
# Parameter models by class name, for ``from kubernaut.execution.catalog import RestartPodParams``.
PARAMS: Mapping[str, type[ActionParams]] = MappingProxyType({spec.params.__name__: spec.params
                                                              for spec in CATALOG.values()})


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


def rbac_rules() -> list[dict[str, list[str]]]:
    """The executor's ClusterRole rules, from what the catalog's actions declare (deploy/10-rbac.yaml)."""
    return cluster_role_rules(rule for spec in CATALOG.values() for rule in spec.rbac)
