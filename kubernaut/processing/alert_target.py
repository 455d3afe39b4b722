"""Which workload an alert is about: the owner of the pod, not the alert name.

Labels ``job, service, instance, endpoint, container`` describe the scrape, not the target; they are
ignored. The Kubernetes owner-chain lookup refines this when a cluster is reachable.
"""

from __future__ import annotations

import hashlib
import re

from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import TargetResolution

# label → kind, most specific workload first.
_WORKLOAD_LABELS: tuple[tuple[str, str], ...] = (
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
    ("cronjob", "CronJob"),
    ("job_name", "Job"),
    ("horizontalpodautoscaler", "HorizontalPodAutoscaler"),
    ("persistentvolumeclaim", "PersistentVolumeClaim"),
    ("poddisruptionbudget", "PodDisruptionBudget"),
)

# <deployment>-<pod-template-hash>-<suffix>: the ReplicaSet hash is 5-10 chars of a safe alphabet.
_DEPLOYMENT_POD = re.compile(
    r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[bcdfghjklmnpqrstvwxz2456789]{5,10}-[a-z0-9]{5}$"
)
_STATEFUL_POD = re.compile(r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-\d{1,4}$")
_DAEMONSET_OR_JOB_POD = re.compile(r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[a-z0-9]{5}$")


def workload_fingerprint(cluster: str, target: ResourceRef, alertname: str | None = None) -> str:
    """sha256 of cluster:namespace:Kind:name; non-workload fallbacks also carry the alert name
    so that unrelated alerts about one namespace do not collapse together."""
    parts = [cluster, target.namespace or "", target.kind, target.name]
    if alertname is not None:
        parts.append(alertname)
    return hashlib.sha256(":".join(parts).encode()).hexdigest()[:32]


def resolve_from_labels(labels: dict[str, str], cluster: str) -> TargetResolution:
    namespace = labels.get("namespace") or labels.get("exported_namespace") or None
    for label, kind in _WORKLOAD_LABELS:
        if labels.get(label) and namespace:
            ref = ResourceRef(kind=kind, name=labels[label], namespace=namespace)
            return TargetResolution(target=ref, source="labels", chain=[f"label {label}"],
                                    fingerprint=workload_fingerprint(cluster, ref))
    pod = labels.get("pod") or labels.get("exported_pod")
    if pod and namespace:
        for pattern, kind, how in (
            (_DEPLOYMENT_POD, "Deployment", "pod name <deployment>-<hash>-<suffix>"),
            (_STATEFUL_POD, "StatefulSet", "pod name <statefulset>-<ordinal>"),
        ):
            match = pattern.match(pod)
            if match:
                ref = ResourceRef(kind=kind, name=match["name"], namespace=namespace)
                return TargetResolution(target=ref, source="labels", chain=[f"Pod {pod}", f"{kind} ({how})"],
                                        fingerprint=workload_fingerprint(cluster, ref))
        ref = ResourceRef(kind="Pod", name=pod, namespace=namespace)
        return TargetResolution(target=ref, source="labels", chain=[f"Pod {pod} (owner unknown)"],
                                fingerprint=workload_fingerprint(cluster, ref))
    node = labels.get("node")
    if node:
        ref = ResourceRef(kind="Node", name=node)
        return TargetResolution(target=ref, source="labels", chain=["label node"],
                                fingerprint=workload_fingerprint(cluster, ref))
    alertname = labels.get("alertname", "unknown")
    if namespace:
        ref = ResourceRef(kind="Namespace", name=namespace)
        return TargetResolution(target=ref, source="labels", chain=["no workload label: namespace + alertname"],
                                fingerprint=workload_fingerprint(cluster, ref, alertname))
    ref = ResourceRef(kind="Cluster", name=cluster)
    return TargetResolution(target=ref, source="labels", chain=["no workload label: cluster + alertname"],
                            fingerprint=workload_fingerprint(cluster, ref, alertname))
