"""Received alerts: committed before the webhook is acknowledged, idempotent on redelivery."""

from __future__ import annotations

import json
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
    """Store every alert of one webhook in one statement; redelivered alerts map to their first row.

    One round trip for the common case (all new): the webhook path is the hot path.
    """
    columns: list[list] = [[] for _ in range(13)]
    keys: list[str] = []
    for alert in payload.alerts:
        labels = alert.labels
        key = dedup_key(alert.fingerprint or "", alert.starts_at.isoformat(), alert.status or "firing")
        values = (payload.receiver, payload.group_key, alert.fingerprint, labels["alertname"], alert.status,
                  labels.get("severity"), labels.get("namespace"), json.dumps(labels),
                  json.dumps(alert.annotations or {}), alert.starts_at, alert.ends_at, alert.generator_url, key)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
        keys.append(key)
    async with pool.acquire() as conn, conn.transaction():
        inserted = await conn.fetch(
            """INSERT INTO alerts (request_id, receiver, group_key, am_fingerprint, alertname, status, severity,
                                   namespace, labels, annotations, starts_at, ends_at, generator_url, dedup_key)
               SELECT $1, r, g, f, n, st, sev, ns, l::jsonb, a::jsonb, sa, ea, gu, k
               FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                           $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::text[])
                    AS t(r, g, f, n, st, sev, ns, l, a, sa, ea, gu, k)
               ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key""",
            request_id, *columns,
        )
        by_key = {row["dedup_key"]: StoredAlert(row["id"], True, None) for row in inserted}
        missing = [k for k in keys if k not in by_key]
        if missing:
            for row in await conn.fetch("SELECT id, incident_id, dedup_key FROM alerts WHERE dedup_key = ANY($1)",
                                        missing):
                by_key[row["dedup_key"]] = StoredAlert(row["id"], False, row["incident_id"])
    # The same alert twice in one body is one alert, reported once per occurrence.
    return [by_key[k] for k in keys]


async def unprocessed_ids(pool: asyncpg.Pool, older_than_s: float, limit: int) -> list[int]:
    rows = await pool.fetch(
        """SELECT id FROM alerts WHERE processed_at IS NULL
             AND received_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2""",
        older_than_s, limit,
    )
    return [r["id"] for r in rows]
