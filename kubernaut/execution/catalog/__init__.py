"""The typed action catalog: the only vocabulary in which a remediation can be requested.

Import from here. The building blocks (errors, hygiene, grammar, quantity, params, plan, rbac, targets,
spec) are imported eagerly; the catalog itself and the actions' parameter models come from the action
modules (kubernaut.execution.actions) on first use, so an action module can import the building blocks
from here without a cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kubernaut.execution.catalog.errors import CatalogError, UnknownActionError
from kubernaut.execution.catalog.nodes import TaintEffect
from kubernaut.execution.catalog.params import ActionParams, NoParams, format_validation_error
from kubernaut.execution.catalog.plan import ActionPlan, PlanDraft, Risk
from kubernaut.execution.catalog.pods import RestartPodParams
from kubernaut.execution.catalog.quantity import parse_quantity
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.resources import IncreaseCpuLimitsParams, IncreaseMemoryLimitsParams
from kubernaut.execution.catalog.spec import ActionSpec, Family, Prelude
from kubernaut.execution.catalog.workloads import ScaleParams

if TYPE_CHECKING:
    from kubernaut.execution.catalog.registry import (
        ACTION_NAMES,
        CATALOG,
        catalog_document,
        get_action,
        rbac_rules,
        validate_request,
    )

_FROM_REGISTRY = frozenset({"ACTION_NAMES", "CATALOG", "catalog_document", "get_action", "rbac_rules",
                            "validate_request"})


def __getattr__(name: str) -> Any:
    """The registry's names, an action's parameter model by class name, quarantine_policy_name."""
    registry = importlib.import_module("kubernaut.execution.catalog.registry")
    if name in _FROM_REGISTRY:
        return getattr(registry, name)
    if name in registry.PARAMS:
        return registry.PARAMS[name]
    if name == "quarantine_policy_name":
        from kubernaut.execution.actions.quarantine_pod import quarantine_policy_name

        return quarantine_policy_name
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTION_NAMES",
    "CATALOG",
    "ActionParams",
    "ActionPlan",
    "ActionSpec",
    "CatalogError",
    "Family",
    "IncreaseCpuLimitsParams",
    "IncreaseMemoryLimitsParams",
    "NoParams",
    "PlanDraft",
    "Prelude",
    "RbacRule",
    "RestartPodParams",
    "Risk",
    "ScaleParams",
    "TaintEffect",
    "UnknownActionError",
    "catalog_document",
    "format_validation_error",
    "get_action",
    "parse_quantity",
    "rbac_rules",
    "validate_request",
]
