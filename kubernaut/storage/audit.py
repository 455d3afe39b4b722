"""Append-only, hash-chained audit trail: who did what, when, to which incident."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import asyncpg

_AUDIT_CHAIN_LOCK = 0x4B4E_4155_4449  # serializes appends so the chain has no forks

GENESIS = "0" * 64


def chain_hash(prev_hash: str, actor: str, event: str, incident_id: int | None, detail: dict[str, Any]) -> str:
    body = json.dumps([prev_hash, actor, event, incident_id, detail], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


async def append(
    conn: asyncpg.Connection, actor: str, event: str, incident_id: int | None, detail: dict[str, Any] | None = None
) -> None:
    """Append one event; must run inside the caller's transaction so it commits with the fact it audits."""
    await append_many(conn, actor, [(event, incident_id, detail or {})])


async def append_many(
    conn: asyncpg.Connection, actor: str, events: list[tuple[str, int | None, dict[str, Any]]]
) -> None:
    """Append several events in order, taking the chain lock once (a processor batch opening many incidents).

    Take it last in a transaction, after any row locks: every writer does, so none waits in a cycle.
    """
    if not events:
        return
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_CHAIN_LOCK)
    prev = await conn.fetchval("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1") or GENESIS
    rows = []
    for event, incident_id, detail in events:
        digest = chain_hash(prev, actor, event, incident_id, detail)
        rows.append((actor, event, incident_id, detail, prev, digest))
        prev = digest
    await conn.executemany(
        "INSERT INTO audit_events (actor, event, incident_id, detail, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6)",
        rows,
    )


async def verify(conn: asyncpg.Pool | asyncpg.Connection, batch_size: int = 1000) -> tuple[bool, int | None, int]:
    """Recompute the chain in id-ordered batches: (intact, id of the first bad row or None, events checked).

    Constant memory and no long transaction, however long the trail: each batch is one short query
    continuing after the last id seen. Appends serialize on the chain lock until commit, so ids follow the
    chain and a row committed meanwhile is simply checked in a later batch.
    """
    prev, last_id, checked = GENESIS, 0, 0
    while True:
        rows = await conn.fetch(
            """SELECT id, actor, event, incident_id, detail, prev_hash, hash FROM audit_events
               WHERE id > $1 ORDER BY id LIMIT $2""", last_id, batch_size)
        if not rows:
            return True, None, checked
        for row in rows:
            expected = chain_hash(prev, row["actor"], row["event"], row["incident_id"], row["detail"])
            if row["prev_hash"] != prev or row["hash"] != expected:
                return False, row["id"], checked
            prev = row["hash"]
            checked += 1
        last_id = rows[-1]["id"]


async def verify_chain(conn: asyncpg.Pool | asyncpg.Connection, batch_size: int = 1000) -> tuple[bool, int | None]:
    """Recompute the chain; (True, None) when intact, else (False, id of the first bad row)."""
    intact, first_bad, _ = await verify(conn, batch_size)
    return intact, first_bad
