"""Real events move the ``ray_kubernaut_*`` series on Ray's own metrics endpoint.

The gateway's ``/metrics`` lists every registered counter in its HELP line whether or not anything was
counted, so a check for a name there cannot fail. Here the app of ``serve_app`` runs unchanged: a real
webhook for a crash-looping Deployment in a managed namespace of the test control plane goes through the
processor, the analysis and the orchestrator to a dry-run action, and the values scraped from the node's
metrics agent (the endpoint Prometheus scrapes in production, see tests/observability/test_metrics_export.py)
must be higher afterwards than before. Ray exports periodically (every 10 s by default): polled with a deadline.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.prometheus_text import _samples, _value
from tests.support.webhooks import incident_when, payload
from tests.support.workloads import crashlooping_deployment

pytestmark = [pytest.mark.integration, pytest.mark.k8s]


def _metrics_ports() -> list[int]:
    import ray

    ports = [node["MetricsExportPort"] for node in ray.nodes() if node.get("Alive") and node.get("MetricsExportPort")]
    assert ports, "no Ray node exports metrics"
    return ports


def _scrape_all(ports: list[int]) -> list[tuple[str, dict[str, str], float]]:
    samples: list[tuple[str, dict[str, str], float]] = []
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            samples += _samples(resp.read().decode())
    return samples


# (series, labels) whose values must grow: a committed firing alert, an accepted webhook, an incident opened,
# a rules analysis and a dry-run action that succeeded. Label values are the app's (metrics.py).
WATCHED: list[tuple[str, dict[str, str]]] = [
    ("ray_kubernaut_alerts_received_total", {"status": "firing"}),
    ("ray_kubernaut_webhook_duration_seconds_count", {"outcome": "accepted"}),
    ("ray_kubernaut_incident_transitions_total", {"phase": "new"}),
    ("ray_kubernaut_analyses_total", {"engine": "rules"}),
    ("ray_kubernaut_actions_total", {"mode": "dry-run"}),
]


def _values(samples: list[tuple[str, dict[str, str], float]]) -> dict[str, float]:
    return {f"{name}{labels}": _value(samples, name, **labels) or 0.0 for name, labels in WATCHED}


async def test_a_real_webhook_and_dry_run_action_increment_the_ray_series(
    serve_app: Any, api: httpx.AsyncClient, kube_api_client: Any, kube_namespace: str
) -> None:
    ports = await asyncio.to_thread(_metrics_ports)
    before = _values(await asyncio.to_thread(_scrape_all, ports))

    pod = await asyncio.to_thread(crashlooping_deployment, kube_api_client, kube_namespace)
    body = payload("captured_am0.25_firing_prometheus_rule.json")
    body["alerts"][0]["labels"].update(namespace=kube_namespace, pod=pod, deployment="web", container="web")
    body["alerts"][0].pop("fingerprint")
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == 200, response.text
    (incident_id,) = response.json()["incident_ids"]
    view = await incident_when(api, incident_id, lambda v: v["workflow"] and v["workflow"]["finished_at"],
                               "workflow finished")
    dry_runs = [a for a in view["actions"] if a["dry_run"] and a["status"] == "dry_run"]
    assert dry_runs, view["actions"]  # the action the counter must count really ran (in dry-run)

    async def grown() -> dict[str, float] | None:
        now = _values(await asyncio.to_thread(_scrape_all, ports))
        return now if all(now[key] > before[key] for key in now) else None

    try:
        after = await eventually(grown, timeout=60, interval=1.0, what="every watched ray_kubernaut_* value to grow")
    except AssertionError:
        now = _values(await asyncio.to_thread(_scrape_all, ports))
        stuck = {key: (before[key], now[key]) for key in now if now[key] <= before[key]}
        pytest.fail(f"series that did not grow (before, now): {stuck}")
    assert after["ray_kubernaut_alerts_received_total{'status': 'firing'}"] >= \
        before["ray_kubernaut_alerts_received_total{'status': 'firing'}"] + 1
