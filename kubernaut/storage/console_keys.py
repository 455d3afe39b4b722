"""The web console's session key, shared by every gateway replica (migration 0018)."""

from __future__ import annotations

import secrets

import asyncpg


async def session_key(pool: asyncpg.Pool) -> bytes:
    """The 32-byte key; the first caller makes it (concurrent first callers agree on one row)."""
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO console_keys (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                           secrets.token_bytes(32))
        return bytes(await conn.fetchval("SELECT key FROM console_keys WHERE id = 1"))
