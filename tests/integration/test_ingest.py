"""Production ingest: a real AlertManager delivers to the running system; hostile and oversized input
is refused cleanly with nothing stored; senders are rate limited."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.integration


def webhook(**labels: str) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "kubernaut", "alerts": [
        {"labels": {"alertname": "KubePodNotReady", "severity": "warning", **labels},
         "startsAt": "2026-11-26T04:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}


async def counts(db: asyncpg.Connection) -> tuple[int, int]:
    return (await db.fetchval("SELECT count(*) FROM alerts"), await db.fetchval("SELECT count(*) FROM incidents"))


async def test_real_alertmanager_delivers_firing_then_resolved(
    serve_app: Any, api: httpx.AsyncClient, db: asyncpg.Connection, alertmanager_for: Any
) -> None:
    manager = await asyncio.to_thread(alertmanager_for, f"{serve_app.base_url}/api/v1/alerts", "test-token-2")
    namespace = f"am-{uuid.uuid4().hex[:6]}"
    labels = {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": "shop-5f6d7c-abcde",
              "container": "shop", "severity": "critical"}
    await asyncio.to_thread(manager.push, labels, {"summary": "crash looping"})

    async def opened() -> asyncpg.Record | None:
        return await db.fetchrow("SELECT * FROM incidents WHERE target_namespace = $1", namespace)

    incident = await eventually(opened, timeout=30, what="incident from AlertManager's webhook")
    assert incident["target_name"] == "shop" and incident["status"] == "open"
    alert = await db.fetchrow("SELECT * FROM alerts WHERE incident_id = $1", incident["id"])
    assert alert["receiver"] == "kubernaut" and len(alert["am_fingerprint"]) == 16

    await asyncio.to_thread(manager.push, labels, resolved=True)

    async def resolved() -> bool:
        return await db.fetchval("SELECT status FROM incidents WHERE id = $1", incident["id"]) == "resolved"

    await eventually(resolved, timeout=30, what="incident resolved by AlertManager's resolved webhook")


async def test_alertmanager_with_a_wrong_token_is_refused_and_nothing_stored(
    serve_app: Any, db: asyncpg.Connection, alertmanager_for: Any
) -> None:
    manager = await asyncio.to_thread(alertmanager_for, f"{serve_app.base_url}/api/v1/alerts", "wrong-token")
    namespace = f"amx-{uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(manager.push, {"alertname": "KubePodNotReady", "namespace": namespace, "pod": "p"})

    async def refused_logged() -> bool:
        return "401" in manager.log.read_text()

    await eventually(refused_logged, timeout=30, what="AlertManager logging the 401")
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE namespace = $1", namespace) == 0


@pytest.mark.parametrize(("body", "status", "needle"), [
    (b"[" * 30_000 + b"]" * 30_000, 400, "nested too deeply"),
    (b'"just a string"', 422, "JSON object"),
    (b"\xff\xfe not utf8", 400, "malformed JSON"),
    (json.dumps(webhook(namespace="n\u0000s")).encode(), 422, "NUL"),
    (json.dumps({**webhook(), "alerts": [{**webhook()["alerts"][0],
                                          "labels": {"alertname": "A", **{f"l{i}": "v" for i in range(500)}}}]}
                ).encode(), 422, "alerts.0.labels"),
    (json.dumps({**webhook(), "alerts": [{"labels": {"alertname": "A"}, "startsAt": "2026-11-26T04:00:00Z"}] * 1001},
                separators=(",", ":")).encode(), 413, "exceed the limit"),
    (json.dumps({**webhook(), "alerts": [{**webhook()["alerts"][0], "labels": {"alertname": {"x": 1}}}]}
                ).encode(), 422, "alerts.0.labels.alertname"),
])
async def test_hostile_payloads_are_refused_cleanly(
    api: httpx.AsyncClient, db: asyncpg.Connection, body: bytes, status: int, needle: str
) -> None:
    before = await counts(db)
    response = await api.post("/api/v1/alerts", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text[:300]
    assert needle in response.text
    assert await counts(db) == before


async def test_unicode_and_control_characters_are_kept_as_data(api: httpx.AsyncClient, db: asyncpg.Connection
                                                              ) -> None:
    namespace = f"uni-{uuid.uuid4().hex[:6]}"
    body = webhook(namespace=namespace, pod="api-5f6d7c-abcde", note="ünïcødé ✓ \u202e\x1b[31m; DROP TABLE alerts;--")
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == 200, response.text
    stored = await db.fetchval("SELECT labels->>'note' FROM alerts WHERE namespace = $1", namespace)
    assert stored == body["alerts"][0]["labels"]["note"]
    assert await db.fetchval("SELECT count(*) FROM alerts") > 0  # the table is still there


async def test_a_flooding_sender_gets_429_with_retry_after(serve_app: Any) -> None:
    headers = {"Authorization": "Bearer test-token-flood"}
    async with httpx.AsyncClient(base_url=serve_app.base_url, timeout=30, headers=headers) as flood:
        responses = await asyncio.gather(*(flood.post("/api/v1/alerts", content=b"{}") for _ in range(120)))
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses][:10]
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert {r.status_code for r in responses} <= {422, 429}


async def test_filtered_alerts_are_recorded_but_open_no_incident(serve_app: Any) -> None:
    # The session app has no filters configured: the decision is still recorded on every alert.
    async with httpx.AsyncClient(base_url=serve_app.base_url, timeout=30,
                                 headers={"Authorization": "Bearer test-token-1"}) as api:
        namespace = f"flt-{uuid.uuid4().hex[:6]}"
        result = (await api.post("/api/v1/alerts", json=webhook(namespace=namespace, pod="x-0"))).json()
        (incident_id,) = result["incident_ids"]
        view = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
        decision = view["alerts"][0]["process_decision"]
        assert decision["filter"] == "no filter matched"
        assert decision["classification"]["priority_rule"]
