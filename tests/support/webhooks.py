"""AlertManager webhooks for the running app: the captured payloads (tests/data/alertmanager), made unique per test,
and waiting for an incident to reach a state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.support.polling import eventually

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "alertmanager"


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def unique(body: dict[str, Any], tag: str) -> dict[str, Any]:
    """Give a captured payload a workload of its own so tests do not join each other's incidents."""
    body = json.loads(json.dumps(body))
    for alert in body["alerts"]:
        labels = alert["labels"]
        for key in ("pod", "deployment", "namespace", "node"):
            if key in labels:
                labels[key] = f"{tag}-{labels[key]}" if key == "pod" else f"{labels[key]}-{tag}"
        alert.pop("fingerprint", None)
    return body


async def incident_when(api: httpx.AsyncClient, incident_id: int, predicate: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/api/v1/incidents/{incident_id}")
        assert response.status_code == 200, response.text
        view = response.json()
        return view if predicate(view) else None

    return await eventually(probe, timeout=30, what=what)
