"""Kubernetes Warning events → alerts: which events count, and the AlertManager-v4 alert each becomes.

Pure translation, no I/O: :mod:`kubernaut.processing.events` lists and watches the events and commits what
this returns. Event messages, names and reasons come from anyone allowed to create Events: they are
untrusted data, stripped of control characters and truncated; nothing from an event is evaluated.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from kubernaut.config.settings import EventSourceConfig
from kubernaut.models.alertmanager import WebhookAlert, parse_go_time

logger = logging.getLogger(__name__)

SOURCE = "kubernetes-event"  # the `source` label of every alert from here

# Same names as kubernaut.analysis.facts (IMAGE_REASONS, CONFIG_REASONS): the waiting reasons a kubelet
# "Failed" event names in its message ("Error: ImagePullBackOff").
_WAITING_REASONS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
                    "CreateContainerConfigError", "CreateContainerError", "RunContainerError")
# involvedObject kind → the label kube-state-metrics alerts carry (kubernaut.processing.alert_target reads them).
_KIND_LABELS = {
    "Pod": "pod", "Node": "node", "Deployment": "deployment", "StatefulSet": "statefulset",
    "DaemonSet": "daemonset", "CronJob": "cronjob", "Job": "job_name", "ReplicaSet": "replicaset",
    "HorizontalPodAutoscaler": "horizontalpodautoscaler", "PersistentVolumeClaim": "persistentvolumeclaim",
    "PersistentVolume": "persistentvolume",
}
_CLUSTER_SCOPED = {"Node", "PersistentVolume", "StorageClass", "Namespace", "ClusterRole"}
_FIELD_PATH = re.compile(r"^spec\.(?:initContainers|containers|ephemeralContainers)\{([^}]{1,253})\}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NAME_CHARS = 253
_SUMMARY_CHARS = 200


def clean_text(value: object, limit: int) -> str:
    """Untrusted text made storable and bounded: no control characters (tab and newline kept), at most
    ``limit`` characters (an ellipsis marks a cut)."""
    text = _CONTROL.sub(" ", str(value or "")).strip()
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _label(value: object, limit: int = _NAME_CHARS) -> str:
    """A label value from untrusted text: one line, bounded."""
    return " ".join(clean_text(value, limit).split())


def _time(value: object) -> datetime | None:
    try:
        return parse_go_time(value)
    except ValueError:
        return None


_serializer: client.ApiClient | None = None


def _as_dict(event: Any) -> dict[str, Any]:
    """The API's JSON shape (camelCase) whether we got it raw or as a client model."""
    global _serializer
    if isinstance(event, dict):
        return event
    if _serializer is None:
        _serializer = client.ApiClient()
    return _serializer.sanitize_for_serialization(event)


def signal_reason(event_reason: str, message: str) -> str | None:
    """The ``reason`` label the rules understand, or None when this occurrence is not a signal."""
    lowered = message.lower()
    if event_reason == "BackOff":
        # A kubelet reports image-pull back-off as a Normal event; a Warning one is treated the same.
        return "ImagePullBackOff" if "pulling image" in lowered else "CrashLoopBackOff"
    if event_reason in ("OOMKilling", "OOMKilled"):
        return "OOMKilled"
    if event_reason == "FailedScheduling":
        return "Unschedulable"
    if event_reason == "Failed":
        for reason in _WAITING_REASONS:
            if reason in message:
                return reason
        # "Failed to pull image ..." precedes "Error: ErrImagePull"; other container failures end in BackOff.
        return "ErrImagePull" if "failed to pull image" in lowered else None
    if event_reason == "Unhealthy":
        # Readiness only: failing liveness probes restart the container, which ends in BackOff.
        return "Unhealthy" if lowered.startswith("readiness probe") else None
    return event_reason


@dataclass(frozen=True)
class EventSignal:
    """One Warning event occurrence as an alert (``alert.starts_at`` = the event's first occurrence)."""

    alert: WebhookAlert
    namespace: str | None  # the alert's namespace label (None for cluster-scoped objects)
    occurred_at: datetime  # this occurrence (lastTimestamp / series.lastObservedTime)
    count: int
    event_ref: str  # namespace/name of the Event object


def event_to_signal(event: Any, config: EventSourceConfig, *, cluster: str | None = None,
                    cluster_label: str = "cluster") -> EventSignal | None:
    """An Event (API JSON or ``CoreV1Event``) → an alert, or None: not a Warning, reason not configured,
    too few occurrences yet, or nothing to identify. ``cluster``: the fleet cluster it was watched on (its
    label on the alert, and part of the alert's identity)."""
    ev = _as_dict(event)
    if ev.get("type") != "Warning":
        return None
    event_reason = str(ev.get("reason") or "")
    alertname = config.reasons.get(event_reason)
    if not alertname:
        return None
    message = clean_text(ev.get("message"), config.max_message_chars)
    label_reason = signal_reason(event_reason, message)
    if label_reason is None:
        return None
    series = ev.get("series") or {}
    count = max(int(ev.get("count") or 0), int(series.get("count") or 0), 1)
    if count < config.min_count.get(event_reason, 1):
        return None
    meta = ev.get("metadata") or {}
    first = _time(ev.get("firstTimestamp")) or _time(ev.get("eventTime")) or _time(meta.get("creationTimestamp"))
    if first is None:
        return None
    occurred = _time(series.get("lastObservedTime")) or _time(ev.get("lastTimestamp")) or _time(ev.get("eventTime"))
    occurred = max(occurred or first, first)

    obj = ev.get("involvedObject") or {}
    kind = _label(obj.get("kind"), 63) or "Unknown"
    name = _label(obj.get("name"))
    if not name:
        return None
    namespace = None if kind in _CLUSTER_SCOPED else (
        _label(obj.get("namespace") or meta.get("namespace"), 63) or None)
    host = _label((ev.get("source") or {}).get("host") or ev.get("reportingInstance"))

    labels = {"alertname": alertname, "reason": label_reason, "event_reason": _label(event_reason, 128),
              "severity": "warning", "source": SOURCE}
    if namespace:
        labels["namespace"] = namespace
    if event_reason == "Evicted" and host:
        # The node is what evicts (kube-prometheus' KubeNodeEviction is about the node): the incident is the
        # node's, the pod is named for context only.
        labels["node"] = host
        labels["evicted_pod"] = name
    else:
        labels[_KIND_LABELS.get(kind, "involved_object")] = name if kind in _KIND_LABELS else f"{kind}/{name}"
    container = _FIELD_PATH.match(str(obj.get("fieldPath") or ""))
    if container:
        labels["container"] = _label(container[1])
    if cluster is not None:
        labels[cluster_label] = cluster

    identity = str(obj.get("uid") or f"{kind}/{namespace or ''}/{name}")
    if cluster is not None:  # the same object name (even uid) in two clusters is two alerts
        identity = f"{cluster}\x00{identity}"
    fingerprint = hashlib.sha256(f"{SOURCE}\x00{identity}\x00{event_reason}\x00{alertname}".encode()).hexdigest()[:16]
    where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    first_line = message.splitlines()[0] if message else ""
    annotations = {
        "summary": clean_text(f"{labels['event_reason']} on {where}: {first_line}", _SUMMARY_CHARS),
        "description": message,
        "event": _label(f"{meta.get('namespace') or ''}/{meta.get('name') or ''}", 2 * _NAME_CHARS),
    }
    try:
        alert = WebhookAlert.model_validate({"status": "firing", "labels": labels, "annotations": annotations,
                                             "startsAt": first, "fingerprint": fingerprint})
    except ValidationError as exc:
        logger.debug("event %s not turned into an alert: %s", annotations["event"], exc)
        return None
    return EventSignal(alert=alert, namespace=namespace, occurred_at=occurred, count=count,
                       event_ref=annotations["event"])
