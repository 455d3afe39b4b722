"""cleanup_orphaned_pvcs: Delete PersistentVolumeClaims in a namespace that no pod or workload template names
(bounded count)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.grammar import LabelSelector
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import PlanDraft
from kubernaut.execution.operations.base import Context, Operation, Prepared, Refused, Verification, Write
from kubernaut.execution.operations.objects import annotations, meta
from kubernaut.execution.scope import ObjectScope
from kubernaut.models.resource import ResourceRef


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


KEEP_ANNOTATION = "kubernaut.ai/keep"


def _statefulset_claim(name: str, statefulsets: list[dict[str, Any]]) -> str | None:
    """Claims named <template>-<statefulset>-<ordinal> belong to a StatefulSet, scaled down or not."""
    for sts in statefulsets:
        for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
            prefix = f"{meta(template).get('name')}-{meta(sts)['name']}-"
            if name.startswith(prefix) and re.fullmatch(r"\d+", name[len(prefix):]):
                return meta(sts)["name"]
    return None


# Every kind whose pod template can name a claim. A Deployment scaled to 0, a suspended CronJob or a
# finished Job still names its claims: it uses them again when it next runs, so they are not orphans.
CLAIM_USERS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


async def claims_in_use(ctx: Context, namespace: str) -> dict[str, str]:
    """{claim name: who names it} over every pod and every controller's template in the namespace.
    A kind that cannot be listed fails the action (KubeError): an unread template could hold a claim."""
    used: dict[str, str] = {}
    for kind, path in CLAIM_USERS.items():
        for obj in await ctx.kube.list(kind, namespace):
            pod_spec: Any = obj
            for key in path:
                pod_spec = (pod_spec or {}).get(key) if isinstance(pod_spec, dict) else None
            for volume in (pod_spec or {}).get("volumes") or []:
                claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim_name:
                    used.setdefault(claim_name, f"used by {kind} {meta(obj).get('name')}")
    return used


def _created(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(meta(obj)["creationTimestamp"].replace("Z", "+00:00"))


class CleanupOrphanedPvcs(Operation):
    name = "cleanup_orphaned_pvcs"

    async def prepare(self, ctx: Context, target: ResourceRef, params: CleanupOrphanedPvcsParams,
                      undo: dict[str, Any] | None) -> Prepared:
        namespace = target.name
        claims = await ctx.kube.list("PersistentVolumeClaim", namespace, label_selector=params.label_selector)
        used = await claims_in_use(ctx, namespace)
        statefulsets = await ctx.kube.list("StatefulSet", namespace)
        in_scope = ObjectScope(ctx.kube, ctx.config)
        cutoff = ctx.clock() - timedelta(hours=params.older_than_hours)
        candidates, kept = [], []
        for claim in claims:
            name = meta(claim)["name"]
            if meta(claim).get("deletionTimestamp"):
                continue
            if name in used:
                kept.append(f"{name} ({used[name]})")
            elif (owner := _statefulset_claim(name, statefulsets)) is not None:
                kept.append(f"{name} (StatefulSet {owner})")
            elif meta(claim).get("ownerReferences"):
                # e.g. a generic ephemeral volume's claim, owned by its pod: the owner's lifecycle decides.
                owners = ", ".join(f"{o.get('kind')} {o.get('name')}" for o in meta(claim)["ownerReferences"])
                kept.append(f"{name} (owned by {owners})")
            elif annotations(claim).get(KEEP_ANNOTATION) == "true":
                kept.append(f"{name} ({KEEP_ANNOTATION}=true)")
            elif not (decision := await in_scope.decide("PersistentVolumeClaim", claim)).managed:
                kept.append(f"{name} (outside the managed scope: {decision.reason})")
            elif _created(claim) > cutoff:
                kept.append(f"{name} (younger than {params.older_than_hours}h)")
            else:
                candidates.append(claim)
        if not candidates:
            raise Refused(f"no orphaned claims in namespace {namespace} (kept: {', '.join(kept) or 'none'})")
        if len(candidates) > params.max_deletions:
            raise Refused(f"{len(candidates)} orphaned claims exceed max_deletions={params.max_deletions}; refusing "
                          "rather than deleting a partial set")
        recorded = []
        for claim in candidates:
            volume = (claim.get("spec") or {}).get("volumeName")
            pv = await ctx.kube.get_or_none("PersistentVolume", volume) if volume else None
            recorded.append({
                "name": meta(claim)["name"], "uid": meta(claim)["uid"], "volume": volume,
                "size": (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage"),
                "reclaim_policy": ((pv or {}).get("spec") or {}).get("persistentVolumeReclaimPolicy"),
            })
        writes = [Write("delete", "PersistentVolumeClaim", meta(c)["name"], namespace, before=c, uid=meta(c)["uid"])
                  for c in candidates]
        notes = [f"{c['name']}: volume {c['volume']} has reclaimPolicy Delete, its data is destroyed"
                 for c in recorded if c["reclaim_policy"] == "Delete"]
        return Prepared(writes, {"claims": recorded, "kept": kept}, {"deleted": [c["name"] for c in recorded]}, notes)

    async def verify(self, ctx: Context, target: ResourceRef, params: CleanupOrphanedPvcsParams,
                     record: dict[str, Any], after: dict[str, Any]) -> Verification:
        left = []
        for claim in record["claims"]:
            live = await ctx.kube.get_or_none("PersistentVolumeClaim", claim["name"], target.name)
            if live is not None and meta(live).get("uid") == claim["uid"]:
                left.append(claim["name"])
        if left:
            return Verification(None, [f"{len(left)} claim(s) still terminating: {', '.join(left)}"])
        return Verification(True, [f"{len(record['claims'])} orphaned claim(s) deleted"])


SPEC = declared(__name__, params=CleanupOrphanedPvcsParams, planner=_plan_cleanup, operation=CleanupOrphanedPvcs())
