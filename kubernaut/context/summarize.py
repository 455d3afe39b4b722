"""Raw Kubernetes JSON → the bounded summaries of ``kubernaut.context.models``.

Pure functions, no I/O: unit-testable without a cluster. Strings that come from the monitored
system (event messages, reasons) are clipped and stripped of control characters here, once.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from kubernaut.context.models import (
    ConfigRef,
    ContainerDetail,
    ContainerSpecSummary,
    ContainerStatusSummary,
    EventSummary,
    HpaSummary,
    NetworkPolicySummary,
    NodeRequirement,
    NodeSummary,
    PdbSummary,
    PodSpecSummary,
    PodSummary,
    PortSpec,
    ProbeSpec,
    PvcSummary,
    QuotaSummary,
    RevisionSummary,
    Taint,
    Toleration,
    WorkloadSummary,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"


def clip(value: Any, limit: int = 200) -> str:
    text = _CONTROL.sub(" ", str(value or ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def containers(template_spec: dict[str, Any]) -> list[ContainerSpecSummary]:
    out = []
    for c in template_spec.get("containers") or []:
        res = c.get("resources") or {}
        out.append(ContainerSpecSummary(
            name=clip(c.get("name"), 63), image=clip(c.get("image"), 200) or None,
            requests={k: str(v) for k, v in (res.get("requests") or {}).items()},
            limits={k: str(v) for k, v in (res.get("limits") or {}).items()},
        ))
    return out


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {
        clip(c.get("type"), 40): clip(f"{c.get('status')}: {c.get('reason') or ''}".rstrip(": "), 80)
        for c in status.get("conditions") or []
    }


def workload(kind: str, obj: dict[str, Any]) -> WorkloadSummary:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    template = (spec.get("jobTemplate") or {}).get("spec", {}).get("template") if kind == "CronJob" \
        else spec.get("template")
    strategy = spec.get("strategy") or spec.get("updateStrategy") or {}
    return WorkloadSummary(
        kind=kind, name=meta.get("name", ""), namespace=meta.get("namespace"),
        replicas=_int(spec.get("replicas")) if kind in ("Deployment", "StatefulSet", "ReplicaSet")
        else _int(status.get("desiredNumberScheduled")),
        ready_replicas=_int(status.get("readyReplicas") or status.get("numberReady")) or 0,
        available_replicas=_int(status.get("availableReplicas") or status.get("numberAvailable")) or 0,
        updated_replicas=_int(status.get("updatedReplicas") or status.get("updatedNumberScheduled")) or 0,
        paused=bool(spec.get("paused")),
        strategy=clip(strategy.get("type"), 40) or None,
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        containers=containers((template or {}).get("spec") or {}),
        revision=_int((meta.get("annotations") or {}).get(REVISION_ANNOTATION)),
        conditions=_conditions(status),
        labels={k: clip(v, 63) for k, v in (meta.get("labels") or {}).items()},
        selector=spec.get("selector") if isinstance(spec.get("selector"), dict) else None,
    )


def revision_of_replicaset(rs: dict[str, Any]) -> RevisionSummary:
    meta, spec = _meta(rs), rs.get("spec") or {}
    template_spec = ((spec.get("template") or {}).get("spec")) or {}
    images = [c.image for c in containers(template_spec) if c.image]
    return RevisionSummary(
        revision=_int((meta.get("annotations") or {}).get(REVISION_ANNOTATION)), name=meta.get("name", ""),
        images=images, replicas=_int((rs.get("status") or {}).get("replicas")) or 0,
        created_at=ts(meta.get("creationTimestamp")), fields=template_fields(template_spec),
    )


def revision_of_controller_revision(cr: dict[str, Any]) -> RevisionSummary:
    meta = _meta(cr)
    data = cr.get("data") or {}
    template_spec = ((data.get("spec") or {}).get("template") or {}).get("spec") or {}
    images = [c.image for c in containers(template_spec) if c.image]
    return RevisionSummary(revision=_int(cr.get("revision")), name=meta.get("name", ""), images=images,
                           created_at=ts(meta.get("creationTimestamp")), fields=template_fields(template_spec))


# Pod-template fields a rollout can change, each compared as a whole between two revisions.
TEMPLATE_FIELDS = ("image", "command", "env", "config_refs", "probes", "resources", "node_selector", "affinity",
                   "tolerations", "ports", "volumes")


def template_fields(template_spec: dict[str, Any]) -> dict[str, str]:
    """field → '<digest> <clipped canonical JSON>' so that two revisions can be diffed field by field."""
    cs = template_spec.get("containers") or []
    parts: dict[str, Any] = {
        "image": [c.get("image") for c in cs],
        "command": [[c.get("command"), c.get("args")] for c in cs],
        "env": [c.get("env") for c in cs],
        "config_refs": [c.get("envFrom") for c in cs],
        "probes": [[c.get("readinessProbe"), c.get("livenessProbe"), c.get("startupProbe")] for c in cs],
        "resources": [c.get("resources") for c in cs],
        "node_selector": template_spec.get("nodeSelector"),
        "affinity": template_spec.get("affinity"),
        "tolerations": template_spec.get("tolerations"),
        "ports": [c.get("ports") for c in cs],
        "volumes": template_spec.get("volumes"),
    }
    out = {}
    for name, value in parts.items():
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        out[name] = f"{hashlib.sha1(text.encode()).hexdigest()[:12]} {clip(text, 240)}"
    return out


def _probe(probe: Any) -> ProbeSpec | None:
    if not isinstance(probe, dict):
        return None
    for key, kind in (("httpGet", "http"), ("tcpSocket", "tcp"), ("grpc", "grpc"), ("exec", "exec")):
        handler = probe.get(key)
        if isinstance(handler, dict):
            port = handler.get("port")
            return ProbeSpec(kind=kind, port=port if isinstance(port, (int, str)) else None,
                             path=clip(handler.get("path"), 200) or None if kind == "http" else None)
    return None


def _config_refs(c: dict[str, Any], volumes: list[dict[str, Any]]) -> list[ConfigRef]:
    refs: list[ConfigRef] = []
    for env in c.get("env") or []:
        source = (env or {}).get("valueFrom") or {}
        for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
            ref = source.get(key)
            if isinstance(ref, dict) and ref.get("name"):
                refs.append(ConfigRef(kind=kind, name=clip(ref["name"], 253), key=clip(ref.get("key"), 253) or None,
                                      optional=bool(ref.get("optional")), via="env"))
    for env_from in c.get("envFrom") or []:
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            ref = (env_from or {}).get(key)
            if isinstance(ref, dict) and ref.get("name"):
                refs.append(ConfigRef(kind=kind, name=clip(ref["name"], 253), optional=bool(ref.get("optional")),
                                      via="envFrom"))
    mounted = {m.get("name") for m in c.get("volumeMounts") or [] if isinstance(m, dict)}
    for volume in volumes:
        if volume.get("name") not in mounted:
            continue
        for key, kind, name_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
            ref = volume.get(key)
            if isinstance(ref, dict) and ref.get(name_key):
                refs.append(ConfigRef(kind=kind, name=clip(ref[name_key], 253), optional=bool(ref.get("optional")),
                                      via="volume"))
    return refs[:30]


def pod_spec(spec: dict[str, Any]) -> PodSpecSummary:
    """The scheduling- and start-relevant parts of a pod spec (a template's or a bare pod's)."""
    affinity = spec.get("affinity") or {}
    node_aff = ((affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    anti = (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    details = []
    for c in (spec.get("containers") or [])[:10]:
        if not isinstance(c, dict):
            continue
        details.append(ContainerDetail(
            name=clip(c.get("name"), 63),
            ports=[PortSpec(name=clip(p.get("name"), 15) or None, port=int(p["containerPort"]))
                   for p in c.get("ports") or [] if isinstance(p, dict) and _int(p.get("containerPort")) is not None],
            readiness=_probe(c.get("readinessProbe")), liveness=_probe(c.get("livenessProbe")),
            config_refs=_config_refs(c, volumes),
            command=[clip(x, 120) for x in (c.get("command") or [])[:5]],
        ))
    return PodSpecSummary(
        node_selector={clip(k, 253): clip(v, 63) for k, v in (spec.get("nodeSelector") or {}).items()},
        tolerations=[Toleration(key=t.get("key"), operator=t.get("operator") or "Equal", value=t.get("value"),
                                effect=t.get("effect")) for t in spec.get("tolerations") or [] if isinstance(t, dict)],
        required_node_affinity=bool(node_aff.get("nodeSelectorTerms")),
        node_affinity_terms=[[NodeRequirement(key=clip(r.get("key"), 253), operator=clip(r.get("operator"), 20),
                                              values=[clip(v, 63) for v in (r.get("values") or [])[:20]])
                              for r in (term or {}).get("matchExpressions") or [] if isinstance(r, dict)]
                             for term in (node_aff.get("nodeSelectorTerms") or [])[:10]],
        required_anti_affinity=bool(anti),
        containers=details,
    )


def pod(obj: dict[str, Any]) -> PodSummary:
    meta, spec, status = _meta(obj), obj.get("spec") or {}, obj.get("status") or {}
    statuses = []
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated") or {}
        current = next(iter(state), "unknown")
        statuses.append(ContainerStatusSummary(
            name=clip(cs.get("name"), 63), ready=bool(cs.get("ready")), restart_count=_int(cs.get("restartCount")) or 0,
            state=current, reason=clip((state.get(current) or {}).get("reason"), 63) or None,
            last_termination_reason=clip(last.get("reason"), 63) or None, last_exit_code=_int(last.get("exitCode")),
            last_finished_at=ts(last.get("finishedAt")),
            message=clip((state.get(current) or {}).get("message"), 300) or None,
            last_message=clip(last.get("message"), 500) or None,
        ))
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    scheduled = conditions.get("PodScheduled") or {}
    return PodSummary(
        name=meta.get("name", ""), namespace=meta.get("namespace"), phase=status.get("phase"),
        node=spec.get("nodeName"),
        ready=(conditions.get("Ready") or {}).get("status") == "True",
        restarts=sum(c.restart_count for c in statuses),
        created_at=ts(meta.get("creationTimestamp")),
        unschedulable=scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable",
        scheduling_message=clip(scheduled.get("message"), 400) or None if scheduled.get("status") == "False" else None,
        revision_hash=(meta.get("labels") or {}).get("pod-template-hash"),
        labels={clip(k, 253): clip(v, 63) for k, v in list((meta.get("labels") or {}).items())[:20]},
        containers=statuses,
    )


def event(obj: dict[str, Any]) -> EventSummary:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    return EventSummary(
        type=clip(obj.get("type"), 20) or None, reason=clip(obj.get("reason"), 63) or None,
        message=clip(obj.get("message") or obj.get("note"), 240),
        object=clip(f"{involved.get('kind', '')}/{involved.get('name', '')}", 120),
        count=_int(obj.get("count") or (obj.get("series") or {}).get("count")) or 1,
        last_seen=ts(obj.get("lastTimestamp") or obj.get("eventTime") or _meta(obj).get("creationTimestamp")),
    )


def hpa(obj: dict[str, Any]) -> HpaSummary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    max_replicas = _int(spec.get("maxReplicas")) or 0
    current = _int(status.get("currentReplicas"))
    desired = _int(status.get("desiredReplicas"))
    return HpaSummary(
        name=_meta(obj).get("name", ""), min_replicas=_int(spec.get("minReplicas")), max_replicas=max_replicas,
        current_replicas=current, desired_replicas=desired,
        at_max=max_replicas > 0 and max(current or 0, desired or 0) >= max_replicas,
    )


def _int_or_str(value: Any) -> int | str | None:
    if value is None:
        return None
    return value if isinstance(value, int) else clip(value, 10)


def pdb(obj: dict[str, Any]) -> PdbSummary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return PdbSummary(
        name=_meta(obj).get("name", ""), namespace=_meta(obj).get("namespace"),
        min_available=_int_or_str(spec.get("minAvailable")),
        max_unavailable=_int_or_str(spec.get("maxUnavailable")),
        disruptions_allowed=_int(status.get("disruptionsAllowed")),
        current_healthy=_int(status.get("currentHealthy")), desired_healthy=_int(status.get("desiredHealthy")),
    )


def pvc(obj: dict[str, Any], expandable: bool | None) -> PvcSummary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return PvcSummary(
        name=_meta(obj).get("name", ""), phase=status.get("phase"),
        capacity=(status.get("capacity") or {}).get("storage"),
        requested=((spec.get("resources") or {}).get("requests") or {}).get("storage"),
        storage_class=spec.get("storageClassName"), expandable=expandable,
    )


def network_policy(obj: dict[str, Any]) -> NetworkPolicySummary:
    spec = obj.get("spec") or {}
    types = list(spec.get("policyTypes") or ["Ingress"])
    return NetworkPolicySummary(
        name=_meta(obj).get("name", ""), policy_types=types, created_at=ts(_meta(obj).get("creationTimestamp")),
        labels={clip(k, 253): clip(v, 63) for k, v in list((_meta(obj).get("labels") or {}).items())[:20]},
        denies_all_ingress="Ingress" in types and not spec.get("ingress"),
        denies_all_egress="Egress" in types and not spec.get("egress"),
    )


def node(obj: dict[str, Any]) -> NodeSummary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    ready = conditions.get("Ready")
    return NodeSummary(
        name=_meta(obj).get("name", ""), ready=None if ready is None else ready == "True",
        unschedulable=bool(spec.get("unschedulable")),
        pressure=sorted(t for t, s in conditions.items() if t and t.endswith("Pressure") and s == "True"),
        taints=[clip(f"{t.get('key')}:{t.get('effect')}", 120) for t in spec.get("taints") or []],
        taint_details=[Taint(key=clip(t.get("key"), 253), value=clip(t.get("value"), 63) or None,
                             effect=clip(t.get("effect"), 20)) for t in spec.get("taints") or [] if t.get("key")],
        labels={clip(k, 253): clip(v, 63) for k, v in list((_meta(obj).get("labels") or {}).items())[:30]},
        allocatable={k: str(v) for k, v in (status.get("allocatable") or {}).items() if k in ("cpu", "memory", "pods")},
        kubelet_version=((status.get("nodeInfo") or {}).get("kubeletVersion")),
    )


def quota(obj: dict[str, Any]) -> QuotaSummary:
    status = obj.get("status") or {}
    return QuotaSummary(name=_meta(obj).get("name", ""),
                        hard={k: str(v) for k, v in (status.get("hard") or {}).items()},
                        used={k: str(v) for k, v in (status.get("used") or {}).items()})
