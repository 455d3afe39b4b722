"""GET /api/v1/audit/verify on the running app (issue 12): the replicas connect as the embedded server's app
role, the report names the keyed segment and the role separation, and an anchor kept outside the database
reveals a deleted tail."""

from __future__ import annotations

import asyncpg
import httpx

from tests.support.polling import eventually
from tests.support.webhooks import payload, unique


async def test_verify_reports_the_keyed_chain_the_app_role_and_checks_an_anchor(
        api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    # An incident opens: the processor appends incident.opened to the trail, as the app role.
    accepted = await api.post("/api/v1/alerts", json=unique(payload("captured_am0.25_firing_amtool.json"), "audit"))
    assert accepted.status_code == 200, accepted.text
    (incident_id,) = accepted.json()["incident_ids"]

    async def opened() -> asyncpg.Record | None:
        return await db.fetchrow("SELECT id, key_id FROM audit_events WHERE incident_id = $1", incident_id)

    assert (await eventually(opened, timeout=30, what="incident.opened audited"))["key_id"] is not None
    body = (await api.get("/api/v1/audit/verify")).json()
    assert body["intact"] is True and body["first_bad_event_id"] is None, body
    assert body["role_separation"] == {"role": "kubernaut_app", "separated": True, "problems": []}
    assert {s["kind"] for s in body["segments"]} == {"hmac-sha256"}
    head = body["head"]
    matching = await api.get("/api/v1/audit/verify", params={"anchor_seq": head["seq"], "anchor_hash": head["hash"]})
    assert matching.status_code == 200 and matching.json()["anchor"]["seq"] == head["seq"]
    # An anchored head the database no longer reaches: the tail after the last event left was deleted.
    last = (await api.get("/api/v1/audit/verify")).json()["head"]["seq"]
    gone = await api.get("/api/v1/audit/verify", params={"anchor_seq": last + 1000, "anchor_hash": "a" * 64})
    assert gone.status_code == 409
    # (the incident's analysis may append meanwhile: the tail named is at least what was there before)
    reason = gone.json()["reason"]
    assert reason.startswith("tail deleted after seq ") and int(reason.split()[4]) >= last, reason
    # Half an anchor, or a malformed one, is a 4xx naming the field, never a 5xx.
    assert (await api.get("/api/v1/audit/verify", params={"anchor_seq": 3})).status_code == 422
    bad = await api.get("/api/v1/audit/verify", params={"anchor_seq": 3, "anchor_hash": "xyz"})
    assert bad.status_code == 422 and "anchor_hash" in bad.text
