"""Production ingest: a real AlertManager delivers to the running system; hostile and oversized input
is refused cleanly with nothing stored; senders are rate limited."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
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


def _alert0(**changes: Any) -> dict[str, Any]:
    return {**webhook(namespace="shop", pod="web-0")["alerts"][0], **changes}


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# Hostile bodies of issue 19 that were mishandled: 503 "cannot persist" (AlertManager retries forever), 500, or
# 200 and then a stalled processor. Each must be a 4xx naming the field, with nothing stored.
@pytest.mark.parametrize(("body", "status", "field"), [
    ({**webhook(), "receiver": "kube\u0000naut"}, 422, "receiver"),
    ({**webhook(), "groupKey": "{}:{alertname=\"A\u0000\"}"}, 422, "groupKey"),
    ({**webhook(), "alerts": [_alert0(fingerprint="f\u0000f")]}, 422, "alerts.0.fingerprint"),
    ({**webhook(), "alerts": [_alert0(generatorURL="http://prom/\u0000")]}, 422, "alerts.0.generatorURL"),
    ({**webhook(), "alerts": [_alert0(startsAt="9999-12-31T23:59:59-01:00")]}, 422, "alerts.0.startsAt"),
    ({**webhook(), "alerts": [_alert0(startsAt="9999-12-31T23:59:59Z")]}, 422, "alerts.0.startsAt"),
    ({**webhook(), "alerts": [_alert0(endsAt="1970-01-01T00:00:01Z")]}, 422, "alerts.0.endsAt"),
    (webhook(namespace="n" * 64, pod="web-0"), 422, "labels.namespace"),
    (webhook(namespace="x" * 4000, pod="web-0"), 422, "labels.namespace"),  # beyond a btree index row
    (webhook(namespace="shop", pod="p" * 254), 422, "labels.pod"),
    (webhook(namespace="Shop Prod"), 422, "labels.namespace"),
    ({**webhook(), "deep": json.loads("[" * 40 + "]" * 40)}, 422, "nested deeper"),
])
async def test_hostile_webhooks_of_issue_19_get_a_4xx_naming_the_field(
    api: httpx.AsyncClient, db: asyncpg.Connection, body: dict[str, Any], status: int, field: str
) -> None:
    before = await counts(db)
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == status, response.text[:300]
    assert field in response.json()["error"], response.text[:300]
    assert await counts(db) == before


async def test_an_integer_too_long_to_convert_is_malformed_json_not_a_500(api: httpx.AsyncClient) -> None:
    body = b'{"version": "4", "status": "firing", "receiver": "r", "x": ' + b"9" * 5000 + b"}"
    response = await api.post("/api/v1/alerts", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:300]


async def test_a_chunked_body_is_cut_off_at_the_limit_without_reading_the_rest(serve_app: Any) -> None:
    """No Content-Length: the gateway must count while reading and answer 413 once past max_body_bytes (64 KiB
    here), while the sender is still sending; a gateway that reads the whole body first never answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", serve_app.port)
    try:
        writer.write(b"POST /api/v1/alerts HTTP/1.1\r\nHost: kubernaut\r\nAuthorization: Bearer test-token-1\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b" " * 16_384
        answer = asyncio.ensure_future(reader.readline())
        started = time.monotonic()
        sent = 0
        # Send up to 4 MiB, never the terminating chunk: only a gateway that stops at the limit can answer.
        while not answer.done() and sent < 4 * 1_048_576:
            try:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            except ConnectionError:
                break
            sent += len(chunk)
            await asyncio.sleep(0.005)
        status_line = await asyncio.wait_for(answer, timeout=max(1.0, 15 - (time.monotonic() - started)))
        assert status_line.startswith(b"HTTP/1.1 413"), status_line
    finally:
        writer.close()


async def test_a_group_above_the_alert_limit_is_stored_up_to_it_and_the_rest_counted(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """AlertManager does not retry a 4xx: a group above max_alerts_per_request (500 in the test app) is stored
    up to the limit and the answer counts the rest, added to what the sender itself truncated."""
    namespace = f"big-{uuid.uuid4().hex[:6]}"
    starts = _iso(datetime.now(timezone.utc) - timedelta(minutes=1))
    alerts = [{"labels": {"alertname": "KubePodNotReady", "namespace": namespace, "i": str(i)},
               "startsAt": starts} for i in range(503)]
    body = {"version": "4", "status": "firing", "receiver": "kubernaut", "truncatedAlerts": 2, "alerts": alerts}
    response = await api.post("/api/v1/alerts", content=json.dumps(body, separators=(",", ":")),
                              headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["accepted"] == 500 and response.json()["truncated_alerts"] == 5
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE namespace = $1", namespace) == 500


async def test_an_alert_the_processor_cannot_handle_is_rejected_and_does_not_block_the_next(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """Rows committed without a processing call (the gateway died, or an older gateway let them in) are the
    sweeper's: one it cannot turn into a target is marked rejected with the reason, and the good row behind it
    (a higher id, the same sweep) still becomes an incident."""
    namespace = f"psn-{uuid.uuid4().hex[:6]}"
    bad_namespace = "n" * 70  # over 63: no ResourceRef can hold it
    ids = []
    for ns, pod in ((bad_namespace, "web-0"), (namespace, "web-0")):
        labels = {"alertname": "KubePodCrashLooping", "namespace": ns, "pod": pod, "severity": "warning"}
        ids.append(await db.fetchval(
            """INSERT INTO alerts (request_id, receiver, am_fingerprint, alertname, status, severity, namespace,
                                   labels, starts_at, dedup_key, received_at)
               VALUES ('poison-test', 'kubernaut', $1, 'KubePodCrashLooping', 'firing', 'warning', $2, $3,
                       now() - interval '1 minute', $4, now() - interval '1 minute') RETURNING id""",
            uuid.uuid4().hex[:16], ns, labels, uuid.uuid4().hex))
    bad_id, good_id = ids

    async def good_processed() -> Any:
        return await db.fetchrow("SELECT processed_at, incident_id FROM alerts WHERE id = $1 AND processed_at "
                                 "IS NOT NULL", good_id)

    processed = await eventually(good_processed, timeout=30, what="the good alert behind the poison processed")
    assert processed["incident_id"] is not None
    listed = (await api.get("/api/v1/alerts", params={"outcome": "rejected", "limit": 500})).json()["items"]
    (rejected,) = [a for a in listed if a["id"] == bad_id]
    assert rejected["process_decision"]["outcome"] == "rejected"
    assert "namespace" in rejected["process_decision"]["reason"], rejected["process_decision"]
    assert rejected["incident_id"] is None


async def test_a_future_starts_at_does_not_outrank_states_received_after_it(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    """The latest state of an alert is chosen by when it happened as the receiver saw it: a firing alert that
    claims to start 12 hours from now (within the day of clock skew allowed) counts as of its receipt, so a
    resolution received after it resolves the incident, and the incident's times are not in the future."""
    namespace = f"fut-{uuid.uuid4().hex[:6]}"
    fingerprint = uuid.uuid4().hex[:16]
    labels = {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": "web-0", "severity": "warning"}
    forged = {"version": "4", "status": "firing", "receiver": "kubernaut", "alerts": [
        {"status": "firing", "labels": labels, "fingerprint": fingerprint,
         "startsAt": _iso(datetime.now(timezone.utc) + timedelta(hours=12))}]}
    opened = await api.post("/api/v1/alerts", json=forged)
    assert opened.status_code == 200, opened.text
    incident_id = await eventually(
        lambda: db.fetchval("SELECT incident_id FROM alerts WHERE am_fingerprint = $1", fingerprint),
        timeout=30, what="incident of the forged alert")
    assert await db.fetchval("SELECT last_seen <= now() FROM incidents WHERE id = $1", incident_id)
    await asyncio.sleep(0.05)  # the resolution starts strictly after the forged alert was received
    resolved = {"version": "4", "status": "resolved", "receiver": "kubernaut", "alerts": [
        {"status": "resolved", "labels": labels, "fingerprint": fingerprint,
         "startsAt": _iso(datetime.now(timezone.utc)), "endsAt": _iso(datetime.now(timezone.utc))}]}
    assert (await api.post("/api/v1/alerts", json=resolved)).status_code == 200

    async def incident_resolved() -> bool:
        return await db.fetchval("SELECT status FROM incidents WHERE id = $1", incident_id) == "resolved"

    await eventually(incident_resolved, timeout=30, what="incident resolved by the later resolution")
