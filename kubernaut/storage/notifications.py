"""Notifications to humans: a durable row first, delivery by the notifications deployment."""

from __future__ import annotations

import asyncpg

from kubernaut.storage import jobs


async def create(
    conn: asyncpg.Connection, incident_id: int | None, event: str, *, title: str, body: str, severity: str = "info"
) -> int:
    """Record a notification and its delivery job in the caller's transaction."""
    notification_id = await conn.fetchval(
        "INSERT INTO notifications (incident_id, event, title, body, severity) VALUES ($1,$2,$3,$4,$5) RETURNING id",
        incident_id, event, title[:250], body[:20_000], severity,
    )
    await jobs.enqueue(conn, "notify", notification_id)
    return notification_id
