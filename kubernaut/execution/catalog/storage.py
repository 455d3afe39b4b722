"""Actions on PersistentVolumeClaims. Neither has an inverse: volumes cannot shrink, and deleted
data does not come back; hence the caps and the approval requirement."""

from __future__ import annotations

from pydantic import Field, model_validator

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    LabelSelector,
    PlanDraft,
    Quantity,
    RbacRule,
    Risk,
    parse_quantity,
    ref,
)
from kubernaut.models.finding import OWNED_ELSEWHERE
from kubernaut.models.finding import FindingKind as K
from kubernaut.models.resource import ResourceRef

SIZE_CEILING = "64Ti"


class ExpandPvcParams(ActionParams):
    """Exactly one of new_size / factor, always under max_size, because an expansion cannot be undone
    and storage is billed by the size requested."""

    new_size: Quantity | None = Field(default=None, description="Absolute new spec.resources.requests.storage.")
    factor: float | None = Field(default=None, ge=1.1, le=4.0, description="Multiply the current request by this.")
    max_size: Quantity = Field(default="1Ti", description=f"Cap on the resulting size; at most {SIZE_CEILING}.")

    @model_validator(mode="after")
    def _sizes(self) -> ExpandPvcParams:
        if (self.new_size is None) == (self.factor is None):
            raise ValueError("new_size, factor: give exactly one of them")
        cap = parse_quantity(self.max_size)
        if cap > parse_quantity(SIZE_CEILING):
            raise ValueError(f"max_size: {self.max_size} exceeds the ceiling {SIZE_CEILING}")
        if self.new_size is not None:
            size = parse_quantity(self.new_size)
            if size < 2**20:
                raise ValueError(f"new_size: {self.new_size} is implausibly small; check the unit")
            if size > cap:
                raise ValueError(f"new_size: {self.new_size} exceeds max_size {self.max_size}")
        return self


class CleanupOrphanedPvcsParams(ActionParams):
    """Bounded in age and count so one run can never empty a namespace's storage."""

    older_than_hours: int = Field(
        default=72,
        ge=1,
        le=24 * 365,
        description="Only claims unused for at least this long (by creation time).",
    )
    label_selector: LabelSelector | None = Field(default=None, description="Restrict to claims matching this selector.")
    max_deletions: int = Field(default=10, ge=1, le=50, description="Delete at most this many claims in one run.")


def _plan_expand(target: ResourceRef, params: ExpandPvcParams) -> list[str]:
    size = params.new_size or f"min(<current request> x {params.factor:g}, {params.max_size})"
    return [
        f"GET {ref(target)} (record spec.resources.requests.storage; refuse unless phase Bound and the new "
        "size is larger)",
        "GET storage.k8s.io/v1 StorageClass <the claim's storageClassName> (refuse unless allowVolumeExpansion)",
        f"LIST v1 ResourceQuota in namespace {target.namespace} (refuse when requests.storage would exceed it)",
        f"PATCH {ref(target)} spec.resources.requests.storage={size}",
        f"WATCH {ref(target)} until status.capacity.storage reaches the new size (FileSystemResizePending "
        "means a pod restart completes it)",
    ]


def _plan_cleanup(target: ResourceRef, params: CleanupOrphanedPvcsParams) -> PlanDraft:
    namespace = target.name
    selector = f" labelSelector={params.label_selector}" if params.label_selector else ""
    return PlanDraft(
        steps=[
            f"LIST v1 PersistentVolumeClaim in namespace {namespace}{selector}",
            f"LIST Pods, Deployments, ReplicaSets, ReplicationControllers, StatefulSets, DaemonSets, Jobs and "
            f"CronJobs in namespace {namespace} (claims named by any pod or any pod template are kept: a "
            "Deployment at 0 replicas, a suspended CronJob or a finished Job uses them again)",
            "keep claims of StatefulSet volumeClaimTemplates (even for scaled-down ordinals) and claims with an "
            "owner (ephemeral volumes)",
            "GET v1 PersistentVolume of each candidate (record reclaimPolicy in the action record)",
            f"keep only claims created more than {params.older_than_hours}h ago, not annotated "
            "kubernaut.ai/keep=true and not labelled out of the managed scope (kubernaut.ai/managed=false); "
            f"refuse when more than {params.max_deletions} remain rather than deleting a partial set",
            f"DELETE v1 PersistentVolumeClaim {namespace}/<each candidate> preconditions.uid=<recorded uid> "
            f"(at most {params.max_deletions})",
        ],
        warnings=["volumes with reclaimPolicy Delete are destroyed with their claim: the data cannot be recovered"],
    )


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="expand_pvc",
        helps_when=(K.PVC_FILLING,),
        harmful_when=(K.PVC_NOT_EXPANDABLE, *OWNED_ELSEWHERE),
        summary=("Grow a PersistentVolumeClaim (to a size, or by a factor, capped); volumes never shrink back."),
        params=ExpandPvcParams,
        target_kinds=("PersistentVolumeClaim",),
        risk=Risk.MEDIUM,
        mutates=True,
        sensitive=False,
        preconditions=(
            "the claim is Bound",
            "its StorageClass has allowVolumeExpansion: true",
            "the namespace ResourceQuota (requests.storage) allows the new size",
        ),
        when_to_use=(
            "A volume is filling up (kubelet_volume_stats_available_bytes low, "
            "KubePersistentVolumeFillingUp) from legitimate data growth."
        ),
        when_not_to_use=(
            "Do not expand when the growth is runaway logs, temp files or a stuck compaction: clean up or "
            "fix the cause, since the extra space cannot be returned. Do not use when the StorageClass does "
            "not allow expansion, or a ResourceQuota forbids the size."
        ),
        verification="status.capacity.storage shows the new size and the filesystem free space rose.",
        inverse=None,
        inverse_note="none: Kubernetes cannot shrink a volume; the previous size is recorded for humans",
        rbac=(
            RbacRule("", "persistentvolumeclaims", ("get", "list", "watch", "patch")),
            RbacRule("storage.k8s.io", "storageclasses", ("get",)),
            RbacRule("", "resourcequotas", ("get", "list")),
        ),
        planner=_plan_expand,
    ),
    ActionSpec(
        name="cleanup_orphaned_pvcs",
        helps_when=(),
        harmful_when=(),
        summary=("Delete PersistentVolumeClaims in a namespace that no pod or workload template names "
                 "(bounded count)."),
        params=CleanupOrphanedPvcsParams,
        target_kinds=("Namespace",),
        risk=Risk.HIGH,
        mutates=True,
        sensitive=True,
        preconditions=(
            "candidate claims are named by no pod and no pod template (Deployments at 0 replicas, Jobs and "
            "CronJobs included) and are not part of a StatefulSet's volumeClaimTemplates",
            "candidate claims are not labelled kubernaut.ai/managed=false",
            "the data on candidate volumes is not needed (or the PersistentVolumes use reclaimPolicy Retain)",
            "the number of candidates does not exceed max_deletions",
        ),
        when_to_use=(
            "A namespace or storage quota is exhausted by claims left behind by deleted workloads or finished jobs."
        ),
        when_not_to_use=(
            "Do not use to free space for a running workload whose own volume is full (expand_pvc). Do not "
            "use on namespaces holding databases or backups without an explicit human decision: deletion is "
            "irreversible."
        ),
        verification=("The candidate claims are gone and the quota usage (requests.storage) dropped accordingly."),
        inverse=None,
        inverse_note="none: deleted claims (and, with reclaimPolicy Delete, their data) cannot be restored",
        rbac=(
            RbacRule("", "persistentvolumeclaims", ("get", "list", "delete")),
            RbacRule("", "pods", ("list",)),
            RbacRule("", "replicationcontrollers", ("list",)),
            RbacRule("", "persistentvolumes", ("get",)),
            RbacRule("apps", "deployments", ("list",)),
            RbacRule("apps", "replicasets", ("list",)),
            RbacRule("apps", "statefulsets", ("list",)),
            RbacRule("apps", "daemonsets", ("list",)),
            RbacRule("batch", "jobs", ("list",)),
            RbacRule("batch", "cronjobs", ("list",)),
        ),
        planner=_plan_cleanup,
    ),
)
