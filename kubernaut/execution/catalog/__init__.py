"""The typed action catalog: the only vocabulary in which a remediation can be requested.

Import from here; the family modules are an implementation detail.
"""

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionPlan,
    ActionSpec,
    CatalogError,
    NoParams,
    PlanDraft,
    RbacRule,
    Risk,
    UnknownActionError,
    format_validation_error,
    parse_quantity,
)
from kubernaut.execution.catalog.jobs import RerunJobParams
from kubernaut.execution.catalog.network import QuarantinePodParams, quarantine_policy_name
from kubernaut.execution.catalog.nodes import DrainNodeParams, RemoveTaintParams, TaintEffect, TaintNodeParams
from kubernaut.execution.catalog.observe import CollectDiagnosticsParams, NotifyOnlyParams
from kubernaut.execution.catalog.pods import DeletePodParams, EvictPodParams, RestartPodParams
from kubernaut.execution.catalog.registry import (
    ACTION_NAMES,
    CATALOG,
    catalog_document,
    get_action,
    rbac_rules,
    validate_request,
)
from kubernaut.execution.catalog.resources import (
    IncreaseCpuLimitsParams,
    IncreaseMemoryLimitsParams,
    RelaxPdbParams,
    UpdateHpaParams,
)
from kubernaut.execution.catalog.storage import CleanupOrphanedPvcsParams, ExpandPvcParams
from kubernaut.execution.catalog.workloads import (
    RollbackParams,
    ScaleDeploymentParams,
    ScaleParams,
    ScaleStatefulSetParams,
    SetImageParams,
)

__all__ = [
    "ACTION_NAMES",
    "CATALOG",
    "ActionParams",
    "ActionPlan",
    "ActionSpec",
    "CatalogError",
    "CleanupOrphanedPvcsParams",
    "CollectDiagnosticsParams",
    "DeletePodParams",
    "DrainNodeParams",
    "EvictPodParams",
    "ExpandPvcParams",
    "IncreaseCpuLimitsParams",
    "IncreaseMemoryLimitsParams",
    "NoParams",
    "NotifyOnlyParams",
    "PlanDraft",
    "QuarantinePodParams",
    "RbacRule",
    "RelaxPdbParams",
    "RemoveTaintParams",
    "RerunJobParams",
    "RestartPodParams",
    "Risk",
    "RollbackParams",
    "ScaleDeploymentParams",
    "ScaleParams",
    "ScaleStatefulSetParams",
    "SetImageParams",
    "TaintEffect",
    "TaintNodeParams",
    "UnknownActionError",
    "UpdateHpaParams",
    "catalog_document",
    "format_validation_error",
    "get_action",
    "parse_quantity",
    "quarantine_policy_name",
    "rbac_rules",
    "validate_request",
]
