"""PersistentVolumeClaims: expansion (never shrinks) and a bounded cleanup of orphaned claims."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from kubernaut.execution.catalog import CleanupOrphanedPvcsParams, ExpandPvcParams, parse_quantity
from kubernaut.execution.operations.base import (
    Context,
    Operation,
    Prepared,
    Refused,
    Verification,
    Write,
    annotations,
    meta,
    must_get,
    with_rv,
)
from kubernaut.execution.scope import ObjectScope
from kubernaut.models.resource import ResourceRef

KEEP_ANNOTATION = "kubernaut.ai/keep"


def _size(value: Decimal) -> str:
    mib = int((value / Decimal(2**20)).to_integral_value(ROUND_CEILING))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


class ExpandPvc(Operation):
    name = "expand_pvc"

    async def prepare(self, ctx: Context, target: ResourceRef, params: ExpandPvcParams,
                      undo: dict[str, Any] | None) -> Prepared:
        pvc = await must_get(ctx, target)
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        if status.get("phase") != "Bound":
            raise Refused(f"claim {target.namespace}/{target.name} is {status.get('phase', 'not Bound')}: only a "
                          "Bound claim can be expanded")
        class_name = spec.get("storageClassName")
        if not class_name:
            raise Refused("the claim has no storageClassName: only dynamically provisioned claims can be expanded")
        storage_class = await ctx.kube.get_or_none("StorageClass", class_name)
        if storage_class is None:
            raise Refused(f"StorageClass {class_name} does not exist")
        if not storage_class.get("allowVolumeExpansion"):
            raise Refused(f"StorageClass {class_name} does not allow volume expansion (allowVolumeExpansion)")
        current_text = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
        current = parse_quantity(current_text)
        if params.new_size is not None:
            new_text = params.new_size
        else:
            assert params.factor is not None
            new_text = _size(min(current * Decimal(str(params.factor)), parse_quantity(params.max_size)))
        new = parse_quantity(new_text)
        if new <= current:
            raise Refused(f"{new_text} is not larger than the current request {current_text}: volumes never shrink")
        for quota in await ctx.kube.list("ResourceQuota", target.namespace):
            hard_all = (quota.get("spec") or {}).get("hard") or {}
            used_all = (quota.get("status") or {}).get("used") or {}
            for key in ("requests.storage", f"{class_name}.storageclass.storage.k8s.io/requests.storage"):
                if key in hard_all and parse_quantity(used_all.get(key, "0")) + new - current > parse_quantity(
                        hard_all[key]):
                    raise Refused(f"ResourceQuota {meta(quota)['name']}: {key} used {used_all.get(key, '0')} of "
                                  f"{hard_all[key]} leaves no room for {new_text}")
        body = with_rv(pvc, {"spec": {"resources": {"requests": {"storage": new_text}}}})
        write = Write("patch", "PersistentVolumeClaim", target.name, target.namespace, body, before=pvc)
        record = {"size": current_text, "capacity": (status.get("capacity") or {}).get("storage")}
        return Prepared([write], record, {"size": new_text},
                        ["an expansion cannot be undone: Kubernetes never shrinks a volume"])

    async def verify(self, ctx: Context, target: ResourceRef, params: ExpandPvcParams, record: dict[str, Any],
                     after: dict[str, Any]) -> Verification:
        pvc = await must_get(ctx, target)
        spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
        want = parse_quantity(after["size"])
        requested = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")
        if parse_quantity(requested) < want:
            return Verification(False, [f"spec.resources.requests.storage is {requested}, below {after['size']}"])
        capacity = (status.get("capacity") or {}).get("storage")
        checks = [f"requested {requested}"]
        if capacity and parse_quantity(capacity) >= want:
            return Verification(True, [*checks, f"status.capacity.storage={capacity}"])
        conditions = [c.get("type") for c in status.get("conditions") or []]
        return Verification(None, [*checks, f"capacity still {capacity} "
                                            f"(resize in progress: {conditions or 'pending'})"])


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


OPERATIONS = (ExpandPvc(), CleanupOrphanedPvcs())
