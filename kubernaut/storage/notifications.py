"""Notifications to humans: a durable row first, delivery by the notifications deployment."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.models.jobs import ApprovalRef, JobKind, NotificationRef
from kubernaut.storage import jobs


async def create(
    conn: asyncpg.Connection, incident_id: int | None, event: str, *, title: str, body: str, severity: str = "info",
    approval_id: int | None = None,
) -> int:
    """Record a notification and its delivery job in the caller's transaction. An approval request also gets its
    escalation job (it waits for ``notifications.escalation`` and ends once the approval is decided)."""
    notification_id = await conn.fetchval(
        """INSERT INTO notifications (incident_id, event, title, body, severity, approval_id)
           VALUES ($1,$2,$3,$4,$5,$6) RETURNING id""",
        incident_id, event, title[:250], body[:20_000], severity, approval_id,
    )
    await jobs.enqueue(conn, JobKind.NOTIFY, NotificationRef(notification_id=notification_id))
    if approval_id is not None and event == "approval.requested":
        await jobs.enqueue(conn, JobKind.ESCALATE, ApprovalRef(approval_id=approval_id))
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
    incident_id: int | None = None
    event: str = ""
    approval_id: int | None = None
    created_at: datetime | None = None


async def get(conn: asyncpg.Connection | asyncpg.Pool, notification_id: int) -> Notification | None:
    row = await conn.fetchrow(
        """SELECT id, title, body, severity, status, deliveries, incident_id, event, approval_id, created_at
           FROM notifications WHERE id = $1""", notification_id)
    return None if row is None else Notification.model_validate(dict(row))


class IncidentFacts(BaseModel):
    """What routing and messages need to know about a notification's incident (None fields: not known)."""

    model_config = ConfigDict(frozen=True)

    incident_id: int
    namespace: str | None
    kind: str
    name: str
    environment: str | None
    severity: str | None
    priority: str | None
    phase: str
    action: str | None  # the action of its latest workflow's plan (its risk is the catalog's)
    root_cause: str | None


async def incident_facts(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> IncidentFacts | None:
    row = await conn.fetchrow(
        """SELECT i.id AS incident_id, i.target_namespace AS namespace, i.target_kind AS kind, i.target_name AS name,
                  i.environment, i.severity, i.priority, i.phase, a.action, a.root_cause
           FROM incidents i
           LEFT JOIN LATERAL (SELECT action, root_cause FROM analyses WHERE incident_id = i.id
                              ORDER BY id DESC LIMIT 1) a ON true
           WHERE i.id = $1""", incident_id)
    return None if row is None else IncidentFacts.model_validate(dict(row))


async def events_of_approval(conn: asyncpg.Connection | asyncpg.Pool, approval_id: int) -> set[str]:
    """The events already notified about an approval (the escalation job sends each stage once)."""
    rows = await conn.fetch("SELECT DISTINCT event FROM notifications WHERE approval_id = $1", approval_id)
    return {r["event"] for r in rows}


async def claim_group(conn: asyncpg.Connection | asyncpg.Pool, receiver: str, group_key: str,
                      repeat_interval_s: float) -> bool:
    """True when ``receiver`` may send to ``group_key`` now (never sent, or longer ago than the interval); the
    send is then recorded. 0 s: always."""
    if repeat_interval_s <= 0:
        return True
    row = await conn.fetchrow(
        """INSERT INTO notification_groups (receiver, group_key, last_sent_at) VALUES ($1, $2, now())
           ON CONFLICT (receiver, group_key) DO UPDATE SET last_sent_at = now()
               WHERE notification_groups.last_sent_at <= now() - make_interval(secs => $3)
           RETURNING receiver""", receiver, group_key, repeat_interval_s)
    return row is not None


class ReceiverHealth(BaseModel):
    model_config = ConfigDict(frozen=True)

    receiver: str
    consecutive_failures: int
    last_error: str | None
    last_failure_at: datetime | None
    last_success_at: datetime | None


async def record_receiver(conn: asyncpg.Connection | asyncpg.Pool, receiver: str, ok: bool,
                          error: str | None = None) -> int:
    """One delivery's outcome for ``receiver``; returns its failures in a row (0 after a success)."""
    if ok:
        await conn.execute(
            """INSERT INTO notification_receivers (receiver, consecutive_failures, last_success_at)
               VALUES ($1, 0, now())
               ON CONFLICT (receiver) DO UPDATE SET consecutive_failures = 0, last_success_at = now()""", receiver)
        return 0
    return await conn.fetchval(
        """INSERT INTO notification_receivers (receiver, consecutive_failures, last_error, last_failure_at)
           VALUES ($1, 1, $2, now())
           ON CONFLICT (receiver) DO UPDATE SET consecutive_failures = notification_receivers.consecutive_failures + 1,
               last_error = $2, last_failure_at = now()
           RETURNING consecutive_failures""", receiver, (error or "")[:500])


async def failing_receivers(conn: asyncpg.Connection | asyncpg.Pool, threshold: int) -> list[ReceiverHealth]:
    rows = await conn.fetch("SELECT * FROM notification_receivers WHERE consecutive_failures >= $1 ORDER BY receiver",
                            threshold)
    return [ReceiverHealth.model_validate(dict(r)) for r in rows]


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
