"""Which objects an incident's remediation may touch: its target and the objects of its workload.

An LLM answer naming anything else — another namespace, a node for a pod incident, the namespace
itself — is rejected, whatever the catalog would accept: alert text can be hostile, and "act on
the thing the alert is about" is the boundary a human reviewer expects.
"""

from __future__ import annotations

from kubernaut.analysis.facts import Situation
from kubernaut.models.resource import ResourceRef

# Alert labels that name objects of the incident's own namespace (same as the rules' target selectors).
_LABEL_KINDS = (
    ("pod", "Pod"),
    ("persistentvolumeclaim", "PersistentVolumeClaim"),
    ("horizontalpodautoscaler", "HorizontalPodAutoscaler"),
    ("job_name", "Job"),
    ("cronjob", "CronJob"),
    ("deployment", "Deployment"),
    ("statefulset", "StatefulSet"),
    ("daemonset", "DaemonSet"),
)
MAX_TARGETS = 40


def allowed_targets(situation: Situation) -> list[ResourceRef]:
    """In-scope targets, the incident's own target first (stable order: it goes into prompts and schemas)."""
    incident = situation.incident_target
    out: list[ResourceRef] = [incident]

    def add(ref: ResourceRef) -> None:
        if ref not in out and len(out) < MAX_TARGETS:
            out.append(ref)

    if incident.kind in ("Node", "Namespace", "Cluster"):
        # Cluster-scoped incidents: only the object itself (plus the Namespace for namespace-wide actions).
        return out
    ns = incident.namespace
    add(situation.workload)
    # The objects the diagnosis names as causes (a tainted Node, a NetworkPolicy, a PodDisruptionBudget):
    # acting on the cause is the point, and only structured findings name them.
    for finding in situation.findings:
        cause = finding.cause
        if cause is not None and finding.justifies and (cause.namespace == ns or cause.kind == "Node"):
            add(cause)
    for ref in sorted(situation.context.related_refs(), key=lambda r: (r.kind, r.name)):
        if ref.namespace == ns:
            add(ref)
    for signal in situation.firing:
        if signal.labels.get("namespace") != ns:
            continue
        for label, kind in _LABEL_KINDS:
            name = signal.labels.get(label)
            if name:
                add(ResourceRef(kind=kind, name=name, namespace=ns))
    return out


def in_scope(target: ResourceRef, allowed: list[ResourceRef]) -> bool:
    return target in allowed
