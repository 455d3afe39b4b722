"""Received alerts: committed before the webhook is acknowledged, idempotent on redelivery."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.signal import Signal


@dataclass(frozen=True)
class StoredAlert:
    id: int
    new: bool
    incident_id: int | None


def dedup_key(fingerprint: str, starts_at_iso: str, status: str) -> str:
    return f"{fingerprint}|{starts_at_iso}|{status}"


async def insert_webhook(pool: asyncpg.Pool, payload: WebhookPayload, request_id: str) -> list[StoredAlert]:
    """Store every alert of one webhook in one statement; redelivered alerts map to their first row."""
    return (await insert_webhooks(pool, [(payload, request_id)]))[0]


async def insert_webhooks(pool: asyncpg.Pool, webhooks: Sequence[tuple[WebhookPayload, str]], *,
                          acquire_timeout: float | None = None) -> list[list[StoredAlert]]:
    """Store the alerts of several webhooks in one statement (the gateway's group commit); one list per webhook.

    An alert is new for the first webhook that carries it (in order) and a duplicate for the others; the
    same alert twice in one body is one alert, reported once per occurrence. One round trip when all are new.
    ``acquire_timeout`` bounds the wait for a connection (with the server down, a new connection would otherwise
    wait out the connect timeout while the sender waits for its answer).
    """
    columns: list[list[Any]] = [[] for _ in range(14)]
    keys_per_webhook: list[list[str]] = []
    for payload, request_id in webhooks:
        keys: list[str] = []
        for alert in payload.alerts:
            labels = alert.labels
            key = dedup_key(alert.fingerprint or "", alert.starts_at.isoformat(), alert.status or "firing")
            values = (request_id, payload.receiver, payload.group_key, alert.fingerprint, labels["alertname"],
                      alert.status, labels.get("severity"), labels.get("namespace"), json.dumps(labels),
                      json.dumps(alert.annotations or {}), alert.starts_at, alert.ends_at, alert.generator_url, key)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
            keys.append(key)
        keys_per_webhook.append(keys)
    # One statement is atomic on its own: no BEGIN/COMMIT round trips. A conflicting row of a concurrent,
    # uncommitted insert makes ON CONFLICT wait for it, so every row the lookup below needs is committed.
    async with pool.acquire(timeout=acquire_timeout) as conn:
        inserted = await conn.fetch(
            """INSERT INTO alerts (request_id, receiver, group_key, am_fingerprint, alertname, status, severity,
                                   namespace, labels, annotations, starts_at, ends_at, generator_url, dedup_key)
               SELECT rid, r, g, f, n, st, sev, ns, l::jsonb, a::jsonb, sa, ea, gu, k
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                           $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[],
                           $14::text[])
                    AS t(rid, r, g, f, n, st, sev, ns, l, a, sa, ea, gu, k)
               ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key""",
            *columns,
        )
        new = {row["dedup_key"]: row["id"] for row in inserted}
        every = {k for keys in keys_per_webhook for k in keys}
        old: dict[str, StoredAlert] = {}
        missing = [k for k in every if k not in new]
        if missing:
            for row in await conn.fetch("SELECT id, incident_id, dedup_key FROM alerts WHERE dedup_key = ANY($1)",
                                        missing):
                old[row["dedup_key"]] = StoredAlert(row["id"], False, row["incident_id"])
    results: list[list[StoredAlert]] = []
    owner: dict[str, int] = {}  # the webhook a new alert counts as new for
    for index, keys in enumerate(keys_per_webhook):
        stored = []
        for key in keys:
            if key in new and owner.setdefault(key, index) == index:
                stored.append(StoredAlert(new[key], True, None))
            elif key in new:
                stored.append(StoredAlert(new[key], False, None))
            else:
                stored.append(old[key])
        results.append(stored)
    return results


async def unprocessed_ids(pool: asyncpg.Pool, older_than_s: float, limit: int) -> list[int]:
    rows = await pool.fetch(
        """SELECT id FROM alerts WHERE processed_at IS NULL
             AND received_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2""",
        older_than_s, limit,
    )
    return [r["id"] for r in rows]


async def reject(conn: asyncpg.Connection | asyncpg.Pool, reasons: dict[int, str]) -> None:
    """Mark alerts the processor cannot handle as processed with outcome ``rejected`` and the reason, so they are
    visible (``GET /api/v1/alerts?outcome=rejected``) and never block the alerts behind them."""
    if not reasons:
        return
    ids = list(reasons)
    await conn.execute(
        """UPDATE alerts SET processed_at = now(), incident_id = NULL,
                  process_decision = jsonb_build_object('outcome', 'rejected', 'reason', u.reason)
           FROM unnest($1::bigint[], $2::text[]) AS u(id, reason)
           WHERE alerts.id = u.id AND alerts.processed_at IS NULL""",
        ids, [reasons[i][:1000] for i in ids],
    )


class ReceivedAlert(BaseModel):
    """One committed alert as stored. Labels and annotations are kept as stored JSON: whether they make a valid
    :class:`Signal` is decided per alert by :func:`to_signal`, so one bad row never fails the rows beside it."""

    model_config = ConfigDict(frozen=True)

    id: int
    request_id: str
    alertname: str
    status: str
    severity: str | None
    namespace: str | None
    labels: JsonValue
    annotations: JsonValue
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    am_fingerprint: str


class AlertLock(BaseModel):
    """An alert row this transaction holds locked, and whether (and into which incident) it was processed."""

    model_config = ConfigDict(frozen=True)

    id: int
    processed: bool
    incident_id: int | None


_RECEIVED_COLUMNS = ("id, request_id, alertname, status, severity, namespace, labels, annotations, starts_at, "
                     "ends_at, received_at, am_fingerprint")


def effective_start(starts_at: datetime, received_at: datetime | None) -> datetime:
    """The sender's startsAt, but never later than our receipt of it (kubernaut.storage.incidents.EFFECTIVE_START
    is the same rule in SQL): a sender's clock cannot push an incident's times into the future."""
    return starts_at if received_at is None else min(starts_at, received_at)


def to_signal(alert: ReceivedAlert) -> Signal:
    """The processor's view of a stored alert; raises ``ValidationError`` for an alert that cannot be one."""
    return Signal(
        alert_id=alert.id, alertname=alert.alertname, status=alert.status, raw_severity=alert.severity,
        namespace=alert.namespace, labels=alert.labels, annotations=alert.annotations,
        starts_at=effective_start(alert.starts_at, alert.received_at), ends_at=alert.ends_at,
        am_fingerprint=alert.am_fingerprint,
    )


async def unprocessed(conn: asyncpg.Connection | asyncpg.Pool, ids: Sequence[int]) -> list[ReceivedAlert]:
    """The alerts of ``ids`` not processed yet, in id order."""
    rows = await conn.fetch(
        f"SELECT {_RECEIVED_COLUMNS} FROM alerts WHERE id = ANY($1::bigint[]) AND processed_at IS NULL ORDER BY id",
        list(ids))
    return [ReceivedAlert.model_validate(dict(r)) for r in rows]


async def all_unprocessed(conn: asyncpg.Connection | asyncpg.Pool) -> list[ReceivedAlert]:
    """Every alert not processed yet, in id order."""
    rows = await conn.fetch(f"SELECT {_RECEIVED_COLUMNS} FROM alerts WHERE processed_at IS NULL ORDER BY id")
    return [ReceivedAlert.model_validate(dict(r)) for r in rows]


async def of_incident(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, limit: int | None = None
                      ) -> list[ReceivedAlert]:
    """The alerts of an incident in id order (the first ``limit`` when given)."""
    rows = await conn.fetch(
        f"SELECT {_RECEIVED_COLUMNS} FROM alerts WHERE incident_id = $1 ORDER BY id LIMIT $2", incident_id, limit)
    return [ReceivedAlert.model_validate(dict(r)) for r in rows]


async def lock_for_processing(conn: asyncpg.Connection, ids: Sequence[int], *, skip_locked: bool = True
                              ) -> list[AlertLock]:
    """Lock the alert rows of ``ids`` for this transaction, in id order; with ``skip_locked`` the rows another
    transaction holds (another replica processing them) are left out."""
    rows = await conn.fetch(
        "SELECT id, processed_at IS NOT NULL AS processed, incident_id FROM alerts WHERE id = ANY($1::bigint[]) "
        "ORDER BY id FOR UPDATE" + (" SKIP LOCKED" if skip_locked else ""), list(ids))
    return [AlertLock.model_validate(dict(r)) for r in rows]


async def mark_processed(conn: asyncpg.Connection, decisions: Sequence[tuple[int, int | None, dict[str, Any]]]
                         ) -> None:
    """Mark alerts processed: (alert id, incident id or None, the processor's decision), in one statement."""
    await conn.execute(
        """UPDATE alerts SET processed_at = now(), incident_id = u.incident_id, process_decision = u.decision::jsonb
           FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, incident_id, decision)
           WHERE alerts.id = u.id""",
        [d[0] for d in decisions], [d[1] for d in decisions], [json.dumps(d[2]) for d in decisions],
    )
