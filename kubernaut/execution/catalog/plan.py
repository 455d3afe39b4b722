"""The plan of one action on one target: the exact API calls, shown to approvers and stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kubernaut.models.resource import ResourceRef


class Risk(str, Enum):
    """Blast radius if the action goes wrong; the policy layer maps it to auto / approval / deny."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"



@dataclass(frozen=True)
class PlanDraft:
    """What a family module's planner returns: the API calls, plus anything the approver should
    know for these particular parameters (e.g. scaling to zero) and a risk raised for them."""

    steps: list[str]
    warnings: list[str] = field(default_factory=list)
    risk: Risk | None = None


class ActionPlan(BaseModel):
    """The concrete, human-readable plan of one action on one target.

    Shown to approvers and stored with the action record, so it names the exact API calls; the
    executor performs these calls and nothing else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    target: ResourceRef
    parameters: dict[str, Any]
    steps: list[str]
    mutates: bool
    risk: Risk
    sensitive: bool
    inverse: str | None = None
    warnings: list[str] = Field(default_factory=list)


API_VERSIONS: Mapping[str, str] = {
    "Pod": "v1",
    "Node": "v1",
    "Namespace": "v1",
    "PersistentVolumeClaim": "v1",
    "Event": "v1",
    "PersistentVolume": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "StorageClass": "storage.k8s.io/v1",
}

def obj(target: ResourceRef) -> str:
    """`namespace/name` or `name`, the form used in plan steps."""
    return f"{target.namespace}/{target.name}" if target.namespace else target.name


def ref(target: ResourceRef) -> str:
    """`apps/v1 Deployment payments/api`: the object an API call addresses."""
    version = API_VERSIONS.get(target.kind)
    return f"{version} {target.kind} {obj(target)}" if version else f"{target.kind} {obj(target)}"

