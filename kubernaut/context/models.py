"""What the Context API knows about a resource: the shapes served at GET /api/v1/context and fed to analysis.

Everything here is a summary, bounded in size, because it goes into LLM prompts and API answers:
strings from the cluster (event messages, annotations) are untrusted and are clipped where they are
read (see ``kubernaut.context.gather``), never interpreted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kubernaut.models.resource import ResourceRef


class OwnerLink(BaseModel):
    kind: str
    name: str


class ContainerSpecSummary(BaseModel):
    name: str
    image: str | None = None
    requests: dict[str, str] = Field(default_factory=dict)
    limits: dict[str, str] = Field(default_factory=dict)


class RevisionSummary(BaseModel):
    """One rollout revision (a Deployment's ReplicaSet, a StatefulSet's controller revision)."""

    revision: int | None = None
    name: str
    images: list[str] = Field(default_factory=list)
    replicas: int = 0
    created_at: datetime | None = None


class WorkloadSummary(BaseModel):
    kind: str
    name: str
    namespace: str | None = None
    replicas: int | None = None
    ready_replicas: int = 0
    available_replicas: int = 0
    updated_replicas: int = 0
    paused: bool = False
    strategy: str | None = None
    generation: int | None = None
    observed_generation: int | None = None
    containers: list[ContainerSpecSummary] = Field(default_factory=list)
    revision: int | None = None
    revisions: list[RevisionSummary] = Field(default_factory=list, description="newest first")
    conditions: dict[str, str] = Field(default_factory=dict, description="type → 'status: reason'")
    labels: dict[str, str] = Field(default_factory=dict)
    selector: dict[str, Any] | None = None


class ContainerStatusSummary(BaseModel):
    name: str
    ready: bool = False
    restart_count: int = 0
    state: str = "unknown"  # running | waiting | terminated | unknown
    reason: str | None = None  # current waiting/terminated reason (CrashLoopBackOff, ImagePullBackOff…)
    last_termination_reason: str | None = None  # OOMKilled, Error, Completed…
    last_exit_code: int | None = None
    last_finished_at: datetime | None = None


class PodSummary(BaseModel):
    name: str
    namespace: str | None = None
    phase: str | None = None
    node: str | None = None
    ready: bool = False
    restarts: int = 0
    created_at: datetime | None = None
    unschedulable: bool = False
    revision_hash: str | None = None
    containers: list[ContainerStatusSummary] = Field(default_factory=list)


class EventSummary(BaseModel):
    type: str | None = None
    reason: str | None = None
    message: str = ""
    object: str = ""
    count: int = 1
    last_seen: datetime | None = None


class HpaSummary(BaseModel):
    name: str
    min_replicas: int | None = None
    max_replicas: int
    current_replicas: int | None = None
    desired_replicas: int | None = None
    at_max: bool = False


class PdbSummary(BaseModel):
    name: str
    min_available: int | str | None = None
    max_unavailable: int | str | None = None
    disruptions_allowed: int | None = None
    current_healthy: int | None = None
    desired_healthy: int | None = None


class PvcSummary(BaseModel):
    name: str
    phase: str | None = None
    capacity: str | None = None
    requested: str | None = None
    storage_class: str | None = None
    expandable: bool | None = None  # the StorageClass allows volume expansion (None: unknown)


class NetworkPolicySummary(BaseModel):
    name: str
    policy_types: list[str] = Field(default_factory=list)
    denies_all_ingress: bool = False
    denies_all_egress: bool = False


class NodeSummary(BaseModel):
    name: str
    ready: bool | None = None
    unschedulable: bool = False
    pressure: list[str] = Field(default_factory=list, description="MemoryPressure, DiskPressure, PIDPressure")
    taints: list[str] = Field(default_factory=list)
    kubelet_version: str | None = None


class QuotaSummary(BaseModel):
    name: str
    hard: dict[str, str] = Field(default_factory=dict)
    used: dict[str, str] = Field(default_factory=dict)


class Traits(BaseModel):
    """Facts that change which remediation is appropriate (field notes: GitOps, sensitive kinds, …)."""

    gitops_managed: bool = False
    gitops_tool: str | None = None  # argocd | flux
    helm_managed: bool = False
    helm_release: str | None = None
    stateful: bool = False
    has_hpa: bool = False
    has_pdb: bool = False
    has_pvc: bool = False
    single_replica: bool = False


class ActionRecord(BaseModel):
    incident_id: int | None = None
    action: str
    status: str
    dry_run: bool
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


class IncidentRecord(BaseModel):
    incident_id: int
    status: str
    phase: str
    signals: list[str] = Field(default_factory=list)
    target: ResourceRef | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    occurrence_count: int = 1
    action: str | None = None
    engine: str | None = None
    confidence: float | None = None
    action_status: str | None = None


class ResourceContext(BaseModel):
    """Everything gathered about one target within the time budget; ``missing`` says what was not."""

    target: ResourceRef
    cluster_available: bool = False
    found: bool = False  # the target (or its workload) exists in the cluster
    reason: str | None = None
    owner_chain: list[OwnerLink] = Field(default_factory=list, description="target first, top owner last")
    workload: WorkloadSummary | None = None
    pods: list[PodSummary] = Field(default_factory=list)
    events: list[EventSummary] = Field(default_factory=list)
    hpa: HpaSummary | None = None
    pdbs: list[PdbSummary] = Field(default_factory=list)
    pvcs: list[PvcSummary] = Field(default_factory=list)
    network_policies: list[NetworkPolicySummary] = Field(default_factory=list)
    nodes: list[NodeSummary] = Field(default_factory=list)
    quotas: list[QuotaSummary] = Field(default_factory=list)
    traits: Traits = Field(default_factory=Traits)
    history: list[IncidentRecord] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list, description="actions on this target, newest first")
    similar: list[IncidentRecord] = Field(default_factory=list, description="same signals on other targets")
    missing: list[str] = Field(default_factory=list, description="sections not gathered, with why")
    elapsed_ms: float = 0.0

    @property
    def workload_ref(self) -> ResourceRef | None:
        if self.workload is None:
            return None
        return ResourceRef(kind=self.workload.kind, name=self.workload.name, namespace=self.workload.namespace)

    def related_refs(self) -> set[ResourceRef]:
        """Objects that belong to the incident's workload: what an action may target besides the target."""
        ns = self.target.namespace if not self.target.cluster_scoped else None
        refs: set[ResourceRef] = {self.target}
        if self.workload_ref is not None:
            refs.add(self.workload_ref)
        if ns is not None:
            refs.update(ResourceRef(kind="Pod", name=p.name, namespace=ns) for p in self.pods)
            refs.update(ResourceRef(kind="PersistentVolumeClaim", name=p.name, namespace=ns) for p in self.pvcs)
            refs.update(ResourceRef(kind="PodDisruptionBudget", name=p.name, namespace=ns) for p in self.pdbs)
            if self.hpa is not None:
                refs.add(ResourceRef(kind="HorizontalPodAutoscaler", name=self.hpa.name, namespace=ns))
            for link in self.owner_chain:
                refs.add(ResourceRef(kind=link.kind, name=link.name, namespace=ns))
        return refs
