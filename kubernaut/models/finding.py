"""Findings: what the diagnosis established from the cluster's evidence, each naming the object that is the cause.

A finding is computed from structured fields of the Kubernetes API (status, spec, conditions, event
reasons, object existence). Free text (event messages, container termination messages, annotations)
is only ever *quoted* as evidence; a finding derived from text alone has ``source="text"`` and may
veto an action but never justify one (``justifies``), so hostile text cannot unlock a mutation.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal

from pydantic import BaseModel, Field

from kubernaut.models.resource import ResourceRef


class FindingKind(str, Enum):
    # the target itself
    TARGET_HEALTHY = "target.healthy"                  # healthy now: the alert is stale or already resolved
    TARGET_MISSING = "target.missing"                  # the alert's object does not exist (any more)
    OUT_OF_SCOPE = "scope.out_of_scope"                # not managed by Kubernaut: never act
    GITOPS_MANAGED = "ownership.gitops"                # Argo CD / Flux own the desired state
    HELM_MANAGED = "ownership.helm"                    # a Helm release owns the spec
    # scheduling (cause: a Node, the workload's spec, or capacity)
    UNTOLERATED_TAINT = "scheduling.untolerated_taint"
    NODE_SELECTOR_UNMATCHED = "scheduling.node_selector"
    AFFINITY_UNSATISFIABLE = "scheduling.affinity"
    INSUFFICIENT_RESOURCES = "scheduling.insufficient_resources"
    NODES_CORDONED = "scheduling.nodes_cordoned"
    QUOTA_EXCEEDED = "quota.exceeded"                  # pod creation refused by a ResourceQuota
    # containers
    OOM_KILLED = "container.oom_killed"
    CONFIG_MISSING = "container.config_missing"        # referenced ConfigMap/Secret/key missing
    CRASH_ON_CONFIG = "container.crash_on_config"      # (text) the crash names missing env/config/file
    COMMAND_NOT_FOUND = "container.command_not_found"  # exit 126/127
    CRASH = "container.crash"                          # error exit, cause unknown
    RESTARTS_WITHOUT_CHANGE = "container.restarts_without_change"
    IMAGE_PULL = "container.image_pull"
    PROBE_MISCONFIGURED = "probe.misconfigured"        # probe port is not a port of the container
    PROBE_FAILING = "probe.failing"                    # running, not ready, probe failures reported
    DEPENDENCY_UNAVAILABLE = "dependency.unavailable"  # a Service it calls has no ready endpoints
    DEPENDENCY_FAILING = "dependency.failing"          # (text) errors name another service / DNS / refusals
    NETWORK_POLICY_DENIES = "network_policy.denies"    # a NetworkPolicy selecting the pods denies traffic
    PDB_BLOCKS_EVICTION = "pdb.blocks_eviction"        # zero allowed disruptions while a drain waits
    ROLLOUT_RECENT = "rollout.recent"                  # what changed in the last rollout, and when
    ROLLOUT_SUSPECT = "rollout.suspect"                # the last rollout changed what the failure is about
    HPA_AT_MAX = "hpa.at_max"
    PVC_FILLING = "pvc.filling"
    PVC_PENDING = "pvc.pending"                        # a claim the pods need is not bound
    PVC_EXPANDABLE = "pvc.expandable"
    PVC_NOT_EXPANDABLE = "pvc.not_expandable"
    QUOTA_NO_ROOM_MEMORY = "quota.no_room_memory"
    QUOTA_NO_ROOM_CPU = "quota.no_room_cpu"
    CPU_THROTTLED = "cpu.throttled"
    NODE_NOT_READY = "node.not_ready"
    NODE_PRESSURE = "node.pressure"
    JOB_FAILED = "job.failed"
    JOB_FAILED_INFRASTRUCTURE = "job.failed_infrastructure"  # pods lost to eviction/node loss, not to the code
    CONTEXT_UNKNOWN = "context.unknown"                # what could not be observed


class Finding(BaseModel):
    kind: FindingKind
    summary: str = Field(description="one sentence a human reads")
    cause: ResourceRef | None = Field(default=None,
                                      description="the object that is the cause (may differ from the alert's subject)")
    subject: ResourceRef | None = Field(default=None, description="where it was observed")
    evidence: list[str] = Field(default_factory=list,
                                description="quoted, clipped observations (data, not instructions)")
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    source: Literal["cluster", "alert", "text"] = "cluster"

    @property
    def justifies(self) -> bool:
        """Only structured observations may justify a mutation; text may only warn against one."""
        return self.source != "text"


K = FindingKind
# Groups the catalog's declarations share (kubernaut.execution.catalog: helps_when / harmful_when).
OWNED_ELSEWHERE = (K.GITOPS_MANAGED, K.HELM_MANAGED)
SCHEDULING_BLOCKED = (K.UNTOLERATED_TAINT, K.NODES_CORDONED, K.NODE_SELECTOR_UNMATCHED, K.AFFINITY_UNSATISFIABLE,
                      K.INSUFFICIENT_RESOURCES, K.QUOTA_EXCEEDED)
# Causes a fresh container does not remove: restarting only destroys the evidence (or makes it worse).
RESTART_FUTILE = (K.TARGET_HEALTHY, K.CONFIG_MISSING, K.CRASH_ON_CONFIG, K.COMMAND_NOT_FOUND, K.DEPENDENCY_UNAVAILABLE,
                  K.DEPENDENCY_FAILING, K.PROBE_MISCONFIGURED, K.IMAGE_PULL, K.OOM_KILLED, K.RESTARTS_WITHOUT_CHANGE,
                  K.ROLLOUT_RECENT, K.NETWORK_POLICY_DENIES, *SCHEDULING_BLOCKED, *OWNED_ELSEWHERE)
