"""Reading live Kubernetes objects (dicts as the API returns them): metadata, ownership, selectors,
readiness and rollout progress, and the patches an operation builds from them."""

from __future__ import annotations

import copy
from typing import Any

from kubernaut.cluster.selectors import selector_query
from kubernaut.execution.kube import Obj


def meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def labels(obj: Obj | None) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def annotations(obj: Obj | None) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def rv(obj: Obj) -> str:
    return str(meta(obj).get("resourceVersion", ""))


def with_rv(obj: Obj, body: Obj) -> Obj:
    """Optimistic concurrency: a patch carrying the resourceVersion we read is refused with 409 when
    someone changed the object since, instead of silently applying on top of their change."""
    out = copy.deepcopy(body)
    out.setdefault("metadata", {})["resourceVersion"] = rv(obj)
    return out


def controller_of(obj: Obj) -> Obj | None:
    for owner in meta(obj).get("ownerReferences") or []:
        if owner.get("controller"):
            return owner
    return None


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 merge patch turning ``old`` into ``new`` (removed keys become null; lists replaced)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch: Obj = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = merge_patch(old[key], value)
    return patch


def selector_string(selector: Obj | None) -> str:
    """metav1.LabelSelector as a label-selector query string."""
    return selector_query(selector)


def selector_matches(selector: Obj | None, pod_labels: dict[str, str]) -> bool:
    """Does a LabelSelector select these labels? (An empty selector selects everything.)"""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if pod_labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in pod_labels
        if (op == "In" and (not present or pod_labels[key] not in values)) or (
            op == "NotIn" and present and pod_labels[key] in values
        ) or (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def is_ready(pod: Obj) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
    )


def rollout_state(obj: Obj) -> tuple[bool | None, str]:
    """(True = complete, None = in progress, False = failed, text) like `kubectl rollout status`."""
    kind = obj.get("kind")
    spec, status, m = obj.get("spec") or {}, obj.get("status") or {}, meta(obj)
    if (status.get("observedGeneration") or 0) < (m.get("generation") or 0):
        return None, "the controller has not observed the latest spec yet"
    if kind == "Deployment":
        for cond in status.get("conditions") or []:
            if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
                return False, f"rollout exceeded its progress deadline: {cond.get('message', '')}"
        want = spec.get("replicas", 1)
        updated, total = status.get("updatedReplicas") or 0, status.get("replicas") or 0
        available = status.get("availableReplicas") or 0
        if updated < want:
            return None, f"{updated} of {want} replicas updated"
        if total > updated:
            return None, f"{total - updated} old replicas pending termination"
        if available < updated:
            return None, f"{available} of {updated} updated replicas available"
        return True, f"rollout complete: {updated} replicas updated and available"
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        ready = status.get("readyReplicas") or 0
        if ready < want:
            return None, f"{ready} of {want} replicas ready"
        strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
        if strategy == "RollingUpdate" and status.get("updateRevision") != status.get("currentRevision"):
            return None, f"{status.get('updatedReplicas') or 0} of {want} pods at the update revision"
        return True, f"rollout complete: {ready} replicas ready"
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled") or 0
        updated = status.get("updatedNumberScheduled") or 0
        available = status.get("numberAvailable") or 0
        if updated < desired:
            return None, f"{updated} of {desired} pods updated"
        if available < desired:
            return None, f"{available} of {desired} pods available"
        return True, f"rollout complete: {desired} pods updated and available"
    return True, "no rollout for this kind"
