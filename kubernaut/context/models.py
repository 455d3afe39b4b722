"""What the Context API knows about a resource: the shapes served at GET /api/v1/context and fed to analysis.

Everything here is a summary, bounded in size, because it goes into LLM prompts and API answers:
strings from the cluster (event messages, annotations) are untrusted and are clipped where they are
read (see ``kubernaut.context.gather``), never interpreted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from kubernaut.gitops.models import GitOpsInfo
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
    fields: dict[str, str] = Field(default_factory=dict, description=(
        "pod-template field → '<digest> <clipped JSON>': image, command, env, config_refs, probes, resources, "
        "node_selector, affinity, tolerations, ports, volumes; two revisions differ in a field when the digests do"))


class Toleration(BaseModel):
    key: str | None = None
    operator: str = "Equal"
    value: str | None = None
    effect: str | None = None


class Taint(BaseModel):
    key: str
    value: str | None = None
    effect: str


class PortSpec(BaseModel):
    name: str | None = None
    port: int


class ProbeSpec(BaseModel):
    kind: str  # http | tcp | exec | grpc
    port: int | str | None = None
    path: str | None = None


class ConfigRef(BaseModel):
    """A ConfigMap or Secret (or one key of it) a container needs."""

    kind: str  # ConfigMap | Secret
    name: str
    key: str | None = None
    optional: bool = False
    via: str = "env"  # env | envFrom | volume


class ContainerDetail(BaseModel):
    name: str
    ports: list[PortSpec] = Field(default_factory=list)
    readiness: ProbeSpec | None = None
    liveness: ProbeSpec | None = None
    config_refs: list[ConfigRef] = Field(default_factory=list)
    command: list[str] = Field(default_factory=list)


class NodeRequirement(BaseModel):
    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: list[str] = Field(default_factory=list)


class PodSpecSummary(BaseModel):
    """What decides where and how the pods run: the workload's template, or a bare pod's spec."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    required_node_affinity: bool = False
    # requiredDuringScheduling node affinity: any term (all of its requirements) admits a node.
    node_affinity_terms: list[list[NodeRequirement]] = Field(default_factory=list)
    required_anti_affinity: bool = False
    containers: list[ContainerDetail] = Field(default_factory=list)


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
    message: str | None = None  # current waiting/terminated message (kubelet's words; untrusted text)
    last_message: str | None = None  # last termination message: the log tail with FallbackToLogsOnError (untrusted)


class PodSummary(BaseModel):
    name: str
    namespace: str | None = None
    phase: str | None = None
    node: str | None = None
    ready: bool = False
    restarts: int = 0
    created_at: datetime | None = None
    unschedulable: bool = False
    scheduling_message: str | None = None  # PodScheduled=False message (the scheduler's words)
    revision_hash: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
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
    namespace: str | None = None
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
    storage_class_exists: bool | None = None


class NetworkPolicySummary(BaseModel):
    name: str
    created_at: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    policy_types: list[str] = Field(default_factory=list)
    denies_all_ingress: bool = False
    denies_all_egress: bool = False


class NodeSummary(BaseModel):
    name: str
    ready: bool | None = None
    unschedulable: bool = False
    pressure: list[str] = Field(default_factory=list, description="MemoryPressure, DiskPressure, PIDPressure")
    taints: list[str] = Field(default_factory=list)
    taint_details: list[Taint] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    allocatable: dict[str, str] = Field(default_factory=dict)
    kubelet_version: str | None = None


class QuotaSummary(BaseModel):
    name: str
    hard: dict[str, str] = Field(default_factory=dict)
    used: dict[str, str] = Field(default_factory=dict)


class Traits(BaseModel):
    """Facts that change which remediation is appropriate (GitOps ownership, sensitive kinds, …)."""

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


class PolicyBlock(BaseModel):
    """A NetworkPolicy on a dependency's pods whose ingress rules admit none of the caller's pods."""

    name: str
    namespace: str
    created_at: datetime | None = None
    reason: str


class ServiceSummary(BaseModel):
    """A Service the workload's errors name (a dependency), and whether anything answers behind it."""

    name: str
    namespace: str
    exists: bool
    ready_endpoints: int | None = None
    not_ready_endpoints: int | None = None
    blocked_by: list[PolicyBlock] = Field(default_factory=list)


class ScopeSummary(BaseModel):
    managed: bool | None = None  # None: could not be read
    reason: str


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
    pod_spec: PodSpecSummary | None = None
    pod_labels: dict[str, str] = Field(default_factory=dict, description="the labels the workload's pods carry")
    # Nodes the scheduler could use, read when pods are Pending.
    candidate_nodes: list[NodeSummary] = Field(default_factory=list)
    # 'ConfigMap/name' → exists (None: unknown); Secrets are looked up by their metadata only.
    config_objects: dict[str, bool | None] = Field(default_factory=dict)
    config_keys: dict[str, list[str]] = Field(default_factory=dict, description="'ConfigMap/name' → its keys")
    services: list[ServiceSummary] = Field(default_factory=list)
    scope: ScopeSummary | None = None
    traits: Traits = Field(default_factory=Traits)
    gitops: GitOpsInfo | None = Field(default=None, description="who owns the desired state (Argo CD, Flux, Helm)")
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
