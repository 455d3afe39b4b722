"""Which cluster the Context API and /api/v1/analyze read (kubernaut/gateway/clusters.py): a configured one, the
home cluster when none is named, and a refusal naming the field for any other (never the home cluster)."""

from __future__ import annotations

from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway.clusters import unknown_alert_cluster, unknown_cluster
from kubernaut.models.alertmanager import WebhookAlert

FLEET = KubernautConfig(cluster_name="a", fleet={"clusters": [{"name": "a"}, {"name": "b", "kubeconfig": "/x"}]})
ONE = KubernautConfig(cluster_name="home")


def alert(**labels: str) -> WebhookAlert:
    return WebhookAlert.model_validate({"labels": {"alertname": "KubePodCrashLooping", **labels},
                                        "startsAt": "2026-12-05T00:00:00Z"})


def test_the_context_cluster_is_a_configured_one_or_the_home_cluster() -> None:
    assert unknown_cluster(FLEET, None) is None and unknown_cluster(FLEET, "b") is None
    assert "'c' is not configured" in (unknown_cluster(FLEET, "c") or "")
    assert unknown_cluster(ONE, "home") is None and unknown_cluster(ONE, None) is None
    assert unknown_cluster(ONE, "b") is not None  # one cluster: any other name is refused, not read at home


def test_an_alert_naming_an_unknown_cluster_is_refused_with_its_field() -> None:
    assert unknown_alert_cluster(FLEET, [alert(cluster="b"), alert()]) is None  # no label: the home cluster
    field, reason = unknown_alert_cluster(FLEET, [alert(cluster="a"), alert(cluster="z")]) or ("", "")
    assert field == "alerts[1].labels.cluster" and "'z'" in reason
    # One cluster: the label is not read (as the webhook's processing does not read it).
    assert unknown_alert_cluster(ONE, [alert(cluster="z")]) is None
