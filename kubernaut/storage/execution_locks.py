"""Execution leases: one row per target being changed, renewed by its holder, free once it expires."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict


class Holder(BaseModel):
    """Who holds a target's lease and for how much longer unless renewed."""

    model_config = ConfigDict(frozen=True)

    action_id: int | None
    action: str
    owner: str
    expires_in_s: float


class HeldLock(BaseModel):
    """A live lease (the executor's status lists them)."""

    model_config = ConfigDict(frozen=True)

    target_key: str
    action_id: int | None
    action: str
    owner: str
    expires_at: datetime


async def try_acquire(pool: asyncpg.Pool, target_key: str, *, action_id: int | None, action: str, owner: str,
                      ttl_s: float) -> bool:
    """Take the lease if it is free or expired (its holder died); atomic across replicas."""
    got = await pool.fetchval(
        """INSERT INTO execution_locks (target_key, action_id, action, owner, expires_at)
           VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
           ON CONFLICT (target_key) DO UPDATE
               SET action_id = EXCLUDED.action_id, action = EXCLUDED.action, owner = EXCLUDED.owner,
                   acquired_at = now(), expires_at = EXCLUDED.expires_at
               WHERE execution_locks.expires_at < now()
           RETURNING owner""",
        target_key, action_id, action, owner, ttl_s,
    )
    return got == owner


async def holder(pool: asyncpg.Pool, target_key: str) -> Holder | None:
    row = await pool.fetchrow(
        "SELECT action_id, action, owner, EXTRACT(EPOCH FROM expires_at - now()) AS left_s "
        "FROM execution_locks WHERE target_key = $1 AND expires_at >= now()",
        target_key,
    )
    if row is None:
        return None
    return Holder(action_id=row["action_id"], action=row["action"], owner=row["owner"],
                  expires_in_s=float(row["left_s"]))


async def renew(pool: asyncpg.Pool, target_key: str, owner: str, ttl_s: float) -> bool:
    got = await pool.fetchval(
        "UPDATE execution_locks SET expires_at = now() + make_interval(secs => $3) "
        "WHERE target_key = $1 AND owner = $2 RETURNING 1",
        target_key, owner, ttl_s,
    )
    return got is not None


async def release(pool: asyncpg.Pool, target_key: str, owner: str) -> None:
    await pool.execute("DELETE FROM execution_locks WHERE target_key = $1 AND owner = $2", target_key, owner)


async def held(pool: asyncpg.Pool) -> list[HeldLock]:
    rows = await pool.fetch(
        "SELECT target_key, action_id, action, owner, expires_at FROM execution_locks WHERE expires_at >= now() "
        "ORDER BY acquired_at"
    )
    return [HeldLock.model_validate(dict(r)) for r in rows]
