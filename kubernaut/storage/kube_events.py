"""Alerts of the Kubernetes Warning-event source (``kubernaut.processing.events``): their latest row per
fingerprint, read and extended under a per-fingerprint advisory lock, so that several replicas watching
the same events commit each decision once."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from kubernaut.storage.incidents import LATEST_ORDER

_LOCK_CLASS = 0x6B65  # "ke": advisory-lock class of event-source writers (one lock per fingerprint)


class EventAlertRow(BaseModel):
    """The newest stored state of one event alert."""

    model_config = ConfigDict(frozen=True)

    id: int
    status: str
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, JsonValue]
    starts_at: datetime
    ends_at: datetime | None


class FiringEventAlert(BaseModel):
    """An event alert whose latest state is firing."""

    model_config = ConfigDict(frozen=True)

    fingerprint: str
    namespace: str | None
    ends_at: datetime | None


def _lock_key(fingerprint: str) -> int:
    return int.from_bytes(hashlib.sha256(fingerprint.encode()).digest()[:4], "big", signed=True)


@asynccontextmanager
async def locked(pool: asyncpg.Pool, fingerprint: str) -> AsyncIterator[asyncpg.Connection]:
    """A transaction holding the advisory lock of one event alert's fingerprint until it ends."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, _lock_key(fingerprint))
        yield conn


async def latest(conn: asyncpg.Connection, receiver: str, namespace: str | None,
                 fingerprint: str) -> EventAlertRow | None:
    """The newest row of one event alert (the namespace narrows the scan to the (namespace, received_at) index)."""
    where = "namespace = $1" if namespace is not None else "namespace IS NULL AND $1::text IS NULL"
    row = await conn.fetchrow(
        f"""SELECT id, status, alertname, labels, annotations, starts_at, ends_at FROM alerts
            WHERE {where} AND am_fingerprint = $2 AND receiver = $3
            ORDER BY {LATEST_ORDER} LIMIT 1""",
        namespace, fingerprint, receiver)
    return EventAlertRow.model_validate(dict(row)) if row is not None else None


async def extend_end(conn: asyncpg.Connection, alert_id: int, ends_at: datetime, *, only_later: bool = True) -> None:
    """Move a firing row's endsAt to ``ends_at`` (with ``only_later``: never backwards)."""
    if only_later:
        await conn.execute("UPDATE alerts SET ends_at = $2 WHERE id = $1 AND (ends_at IS NULL OR ends_at < $2)",
                           alert_id, ends_at)
    else:
        await conn.execute("UPDATE alerts SET ends_at = $2 WHERE id = $1", alert_id, ends_at)


async def firing(pool: asyncpg.Pool, receiver: str, label: str | None = None, value: str | None = None
                 ) -> list[FiringEventAlert]:
    """Every event alert of ``receiver`` whose latest state is firing; with ``label``/``value``, only those whose
    label ``label`` is ``value`` (a fleet: one cluster's, ``value`` None: those without the label)."""
    rows = await pool.fetch(
        f"""SELECT * FROM (SELECT DISTINCT ON (am_fingerprint) am_fingerprint, namespace, status, ends_at, labels
                          FROM alerts WHERE receiver = $1
                          ORDER BY am_fingerprint, {LATEST_ORDER}) latest
           WHERE status = 'firing'
             AND ($2::text IS NULL OR (labels ->> $2) IS NOT DISTINCT FROM $3::text)""", receiver, label, value)
    return [FiringEventAlert(fingerprint=r["am_fingerprint"], namespace=r["namespace"], ends_at=r["ends_at"])
            for r in rows]
