"""Who watches each cluster's Warning events: one lease row per cluster (holder + expiry) and one heartbeat row
per processor replica (``kubernaut.processing.watch_ownership`` decides; this module only reads and writes).

Every time is PostgreSQL's (``clock_timestamp()``), so replicas with skewed clocks agree on expiry. A claim is a
single ``INSERT .. ON CONFLICT DO UPDATE .. WHERE`` (the row is locked and the condition re-read), so of two
replicas claiming the same free cluster exactly one wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict

_EXPIRY = "clock_timestamp() + make_interval(secs => $2::float8)"


class WatchLease(BaseModel):
    """One cluster's lease: ``live`` while its holder renews it."""

    model_config = ConfigDict(frozen=True)

    cluster: str
    holder: str | None
    expires_at: datetime
    acquired_at: datetime | None
    live: bool


async def heartbeat(pool: asyncpg.Pool | asyncpg.Connection, holder: str, ttl_s: float) -> int:
    """Say that ``holder`` takes part for ``ttl_s`` more; returns how many replicas take part now (itself
    included). Replicas gone for an hour are forgotten."""
    return int(await pool.fetchval(
        f"""WITH beat AS (
                INSERT INTO event_watch_replicas (holder, expires_at) VALUES ($1, {_EXPIRY})
                ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at RETURNING holder),
            forgotten AS (
                DELETE FROM event_watch_replicas
                WHERE expires_at < clock_timestamp() - interval '1 hour' AND holder <> $1)
            SELECT 1 + count(*) FROM event_watch_replicas
            WHERE expires_at > clock_timestamp() AND holder <> $1""", holder, ttl_s))


async def claim(pool: asyncpg.Pool | asyncpg.Connection, cluster: str, holder: str, ttl_s: float) -> bool:
    """Take ``cluster``'s lease if nobody holds it (never held, released or expired); whether ``holder`` has it."""
    won = await pool.fetchval(
        f"""INSERT INTO event_watch_leases AS l (cluster, holder, expires_at, acquired_at)
            VALUES ($3, $1, {_EXPIRY}, clock_timestamp())
            ON CONFLICT (cluster) DO UPDATE
                SET holder = excluded.holder, expires_at = excluded.expires_at,
                    acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at
                                       ELSE excluded.acquired_at END
                WHERE l.holder IS NULL OR l.holder = excluded.holder OR l.expires_at <= clock_timestamp()
            RETURNING cluster""", holder, ttl_s, cluster)
    return won is not None


async def renew(pool: asyncpg.Pool | asyncpg.Connection, holder: str, clusters: Sequence[str],
                ttl_s: float) -> set[str]:
    """Extend the leases ``holder`` still has among ``clusters``; returns those (a missing one was taken over)."""
    if not clusters:
        return set()
    rows = await pool.fetch(
        f"""UPDATE event_watch_leases SET expires_at = {_EXPIRY}
            WHERE holder = $1 AND cluster = ANY($3::text[]) RETURNING cluster""", holder, ttl_s, list(clusters))
    return {r["cluster"] for r in rows}


async def release(pool: asyncpg.Pool | asyncpg.Connection, holder: str, clusters: Sequence[str] | None = None
                  ) -> int:
    """Give up ``holder``'s leases (all of them with ``clusters`` None): free to claim at once."""
    status = await pool.execute(
        """UPDATE event_watch_leases SET holder = NULL, expires_at = clock_timestamp(), acquired_at = NULL
           WHERE holder = $1 AND ($2::text[] IS NULL OR cluster = ANY($2::text[]))""",
        holder, list(clusters) if clusters is not None else None)
    return int(status.split()[-1])


async def leave(pool: asyncpg.Pool | asyncpg.Connection, holder: str) -> None:
    """A replica that stops: its leases are released and it no longer counts as taking part."""
    await release(pool, holder)
    await pool.execute("DELETE FROM event_watch_replicas WHERE holder = $1", holder)


async def leases(pool: asyncpg.Pool | asyncpg.Connection) -> list[WatchLease]:
    """Every cluster's lease, by cluster name."""
    rows = await pool.fetch(
        """SELECT cluster, holder, expires_at, acquired_at,
                  holder IS NOT NULL AND expires_at > clock_timestamp() AS live
           FROM event_watch_leases ORDER BY cluster""")
    return [WatchLease.model_validate(dict(r)) for r in rows]


__all__ = ["WatchLease", "claim", "heartbeat", "leases", "leave", "release", "renew"]
