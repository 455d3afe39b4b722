"""Nothing lives only in actor memory: Serve stopped and started on the same data directory keeps
every incident, and work left unfinished is resumed from the database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "alertmanager"


async def test_incident_survives_a_serve_restart(serve_app, api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    body = json.loads((PAYLOADS / "captured_am0.25_firing_amtool.json").read_text())
    body["alerts"][0]["labels"].update(namespace="restart", pod="checkout-7d4b9c8f6-zzzzz")
    (incident_id,) = (await api.post("/api/v1/alerts", json=body)).json()["incident_ids"]

    async def completed() -> dict | None:
        view = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
        return view if view["workflow"] and view["workflow"]["finished_at"] else None

    before = await eventually(completed, what="workflow completed before restart")

    await asyncio.to_thread(serve_app.stop)
    # Work that arrives while nothing runs: committed directly, as a gateway would have just before dying.
    orphan_id = await db.fetchval(
        """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, severity, namespace, labels,
                              starts_at, dedup_key)
           VALUES ('orphan', 'orphan0000000001', 'KubePodCrashLooping', 'firing', 'warning', 'restart',
                   '{"alertname": "KubePodCrashLooping", "namespace": "restart", "pod": "cart-7d4b9c8f6-yyyyy"}',
                   now(), 'orphan|restart|firing') RETURNING id"""
    )
    await asyncio.to_thread(serve_app.start)
    await serve_app.wait_ready()

    after = (await api.get(f"/api/v1/incidents/{incident_id}")).json()
    assert after["id"] == before["id"] and after["analysis"]["id"] == before["analysis"]["id"]
    assert after["actions"] == before["actions"]

    # The processor's sweeper finds the orphaned alert, and the loop completes for it too.
    async def orphan_done() -> int | None:
        return await db.fetchval(
            """SELECT i.id FROM alerts a JOIN incidents i ON i.id = a.incident_id
               JOIN workflows w ON w.incident_id = i.id WHERE a.id = $1 AND w.finished_at IS NOT NULL""", orphan_id)

    await eventually(orphan_done, timeout=60, what="orphaned alert processed after restart")
