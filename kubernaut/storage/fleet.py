"""The fleet's bookkeeping in the database: rows from before the fleet belong to the home cluster."""

from __future__ import annotations

import asyncpg


async def adopt_home(pool: asyncpg.Pool, home: str) -> int:
    """Name the home cluster on incidents and actions recorded before migration 0016 (cluster NULL); returns how
    many rows were adopted. Cheap once done: partial indexes hold only the NULL rows."""
    async with pool.acquire() as conn, conn.transaction():
        incidents = await conn.execute("UPDATE incidents SET cluster = $1 WHERE cluster IS NULL", home)
        actions = await conn.execute("UPDATE actions SET cluster = $1 WHERE cluster IS NULL", home)
    return int(incidents.split()[-1]) + int(actions.split()[-1])
