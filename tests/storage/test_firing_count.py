"""An incident's firing count is kept from the alerts each batch touches; it must always equal a full
recount (latest event per alert fingerprint is firing) and resolve the incident exactly at zero —
across batches, redeliveries, out-of-order resolutions and many fingerprints (real PostgreSQL)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import asyncpg
import pytest

from kubernaut.config.settings import ProcessingConfig
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.processing import intake
from kubernaut.processing.classification import classify
from kubernaut.processing.owners import OwnerResolver
from kubernaut.storage import alerts
from kubernaut.storage.alerts import insert_webhooks
from tests.support.incident_history import connect

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)

RECOUNT = """SELECT count(*) FROM (SELECT DISTINCT ON (am_fingerprint) status FROM alerts WHERE incident_id = $1
             ORDER BY am_fingerprint, starts_at DESC, (status = 'resolved') DESC, id DESC) l WHERE status = 'firing'"""


def webhook(events: list[tuple[str, str, int]]) -> WebhookPayload:
    """events: (fingerprint, status, episode) — an episode is one startsAt of that alert."""
    return WebhookPayload.model_validate({
        "version": "4", "status": "firing", "receiver": "kubernaut", "groupKey": "{}:{}",
        "alerts": [{"status": status, "fingerprint": fp,
                    "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": "web",
                               "pod": f"web-{fp}"},
                    "startsAt": (T0 + timedelta(minutes=episode)).isoformat(),
                    "endsAt": (T0 + timedelta(minutes=episode, seconds=30)).isoformat() if status == "resolved"
                    else "0001-01-01T00:00:00Z"} for fp, status, episode in events],
    })


async def process(pool: asyncpg.Pool, owners: OwnerResolver) -> None:
    items = []
    for alert in await alerts.all_unprocessed(pool):
        signal = alerts.to_signal(alert)
        items.append(intake.Enriched(signal=signal, resolution=await owners.resolve(signal.labels),
                                     classification=classify(signal.namespace, None, signal.raw_severity),
                                     request_id=alert.request_id))
    async with pool.acquire() as conn, conn.transaction():
        await alerts.lock_for_processing(conn, [i.signal.alert_id for i in items], skip_locked=False)
        await intake.process_batch(conn, items, [], ProcessingConfig())


async def test_the_kept_count_equals_a_full_recount_through_random_histories(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    owners = OwnerResolver(None, "test", ttl_s=60, timeout_s=1)
    rng = random.Random(7)
    fingerprints = [f"fp{i}" for i in range(12)]
    episode = {fp: 0 for fp in fingerprints}
    try:
        for step in range(60):
            events = []
            for _ in range(rng.randint(1, 8)):
                fp = rng.choice(fingerprints)
                roll = rng.random()
                if roll < 0.15:
                    episode[fp] += 1  # the alert fires again later: a new episode
                status = "resolved" if roll > 0.6 else "firing"
                # Now and then a late redelivery of an older episode, or of the same event.
                events.append((fp, status, max(0, episode[fp] - (1 if rng.random() < 0.1 else 0))))
            await insert_webhooks(db.pool, [(webhook(events), f"r{step}")])
            await process(db.pool, owners)
            for incident in await db.pool.fetch("SELECT id, status, firing_alerts FROM incidents"):
                expected = await db.pool.fetchval(RECOUNT, incident["id"])
                assert incident["firing_alerts"] == expected, (step, dict(incident), expected)
                if incident["status"] == "open":
                    assert expected > 0, (step, dict(incident))
        # Everything resolves: the incident resolves exactly then; the next firing opens a new one.
        await insert_webhooks(db.pool, [(webhook([(fp, "resolved", episode[fp]) for fp in fingerprints]), "end")])
        await process(db.pool, owners)
        assert [(r["status"], r["firing_alerts"]) for r in await db.pool.fetch(
            "SELECT status, firing_alerts FROM incidents WHERE status <> 'resolved' OR id = (SELECT max(id) FROM "
            "incidents)")] == [("resolved", 0)]
        await insert_webhooks(db.pool, [(webhook([("fp0", "firing", episode["fp0"] + 1)]), "again")])
        await process(db.pool, owners)
        latest = await db.pool.fetchrow("SELECT status, firing_alerts FROM incidents ORDER BY id DESC LIMIT 1")
        assert (latest["status"], latest["firing_alerts"]) == ("open", 1)
    finally:
        await db.close()
