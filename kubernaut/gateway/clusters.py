"""Which cluster a read-only request is about (issue 16): the Context API's ``cluster`` parameter and the alerts
of ``/api/v1/analyze`` (their cluster label, as the webhook reads it). Fail closed: a cluster that is not
configured is refused with the field that named it, never answered from the home cluster."""

from __future__ import annotations

from collections.abc import Sequence

from kubernaut.config.settings import KubernautConfig
from kubernaut.models.alertmanager import WebhookAlert


def unknown_cluster(config: KubernautConfig, cluster: str | None) -> str | None:
    """Why ``cluster`` cannot be read (None: it is configured, or not given: the home cluster)."""
    if cluster is None:
        return None
    known = [c.name for c in config.clusters()]
    if cluster in known:
        return None
    return f"cluster {cluster!r} is not configured; known: {sorted(known)}"


def unknown_alert_cluster(config: KubernautConfig, alerts: Sequence[WebhookAlert]) -> tuple[str, str] | None:
    """The first alert naming a cluster that is not configured: (field, reason). One cluster (no fleet.clusters):
    the label is not read, as by the webhook's processing."""
    if not config.fleet.clusters:
        return None
    label = config.fleet.cluster_label
    for index, alert in enumerate(alerts):
        named = (alert.labels.get(label) or "").strip()
        reason = unknown_cluster(config, named or None)
        if reason is not None:
            return f"alerts[{index}].labels.{label}", reason
    return None
