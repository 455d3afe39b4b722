"""Notifications to humans: a durable row first, delivery by the notifications deployment."""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.models.jobs import JobKind, NotificationRef
from kubernaut.storage import jobs


async def create(
    conn: asyncpg.Connection, incident_id: int | None, event: str, *, title: str, body: str, severity: str = "info"
) -> int:
    """Record a notification and its delivery job in the caller's transaction."""
    notification_id = await conn.fetchval(
        "INSERT INTO notifications (incident_id, event, title, body, severity) VALUES ($1,$2,$3,$4,$5) RETURNING id",
        incident_id, event, title[:250], body[:20_000], severity,
    )
    await jobs.enqueue(conn, JobKind.NOTIFY, NotificationRef(notification_id=notification_id))
    return notification_id


class Notification(BaseModel):
    """A recorded notification and how far its delivery got (``deliveries``: URL index → sent/failed)."""

    model_config = ConfigDict(frozen=True)

    id: int
    title: str
    body: str
    severity: str
    status: str
    deliveries: dict[str, str]


async def get(conn: asyncpg.Connection | asyncpg.Pool, notification_id: int) -> Notification | None:
    row = await conn.fetchrow("SELECT id, title, body, severity, status, deliveries FROM notifications WHERE id = $1",
                              notification_id)
    return None if row is None else Notification.model_validate(dict(row))


async def save_delivery(conn: asyncpg.Connection | asyncpg.Pool, notification_id: int, *, status: str,
                        deliveries: dict[str, str], attempts: int, targets: int, error: str | None) -> None:
    """Record a delivery round; ``sent``/``logged`` stamp the time it was sent."""
    await conn.execute(
        """UPDATE notifications SET status = $2, deliveries = $3, attempts = $4, targets = $5, error = $6,
               sent_at = CASE WHEN $2 IN ('sent', 'logged') THEN now() ELSE sent_at END WHERE id = $1""",
        notification_id, status, deliveries, attempts, targets, error,
    )


async def give_up(conn: asyncpg.Connection | asyncpg.Pool, notification_id: int, error: str) -> None:
    await conn.execute("UPDATE notifications SET status = 'failed', error = $2 WHERE id = $1", notification_id, error)
