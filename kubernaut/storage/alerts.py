"""Received alerts: committed before the webhook is acknowledged, idempotent on redelivery."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from kubernaut.models.alertmanager import WebhookPayload


@dataclass(frozen=True)
class StoredAlert:
    id: int
    new: bool
    incident_id: int | None


def dedup_key(fingerprint: str, starts_at_iso: str, status: str) -> str:
    return f"{fingerprint}|{starts_at_iso}|{status}"


async def insert_webhook(pool: asyncpg.Pool, payload: WebhookPayload, request_id: str) -> list[StoredAlert]:
    """Store every alert of one webhook in one transaction; redelivered alerts map to their first row."""
    rows = []
    for alert in payload.alerts:
        labels = alert.labels
        rows.append((
            request_id, payload.receiver, payload.group_key, alert.fingerprint, labels["alertname"], alert.status,
            labels.get("severity"), labels.get("namespace"), labels, alert.annotations or {},
            alert.starts_at, alert.ends_at, alert.generator_url,
            dedup_key(alert.fingerprint or "", alert.starts_at.isoformat(), alert.status or "firing"),
        ))
    stored: list[StoredAlert] = []
    async with pool.acquire() as conn, conn.transaction():
        for row in rows:
            rec = await conn.fetchrow(
                """INSERT INTO alerts (request_id, receiver, group_key, am_fingerprint, alertname, status, severity,
                                       namespace, labels, annotations, starts_at, ends_at, generator_url, dedup_key)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
                   ON CONFLICT (dedup_key) DO NOTHING RETURNING id""",
                *row,
            )
            if rec is not None:
                stored.append(StoredAlert(rec["id"], True, None))
            else:
                old = await conn.fetchrow("SELECT id, incident_id FROM alerts WHERE dedup_key = $1", row[-1])
                stored.append(StoredAlert(old["id"], False, old["incident_id"]))
    return stored


async def unprocessed_ids(pool: asyncpg.Pool, older_than_s: float, limit: int) -> list[int]:
    rows = await pool.fetch(
        """SELECT id FROM alerts WHERE processed_at IS NULL
             AND received_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2""",
        older_than_s, limit,
    )
    return [r["id"] for r in rows]
