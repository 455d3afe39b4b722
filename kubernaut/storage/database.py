"""One asyncpg pool per replica, on an external server or the embedded one: same code path."""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg
from pgvector.asyncpg import register_vector

from kubernaut.config.settings import StorageConfig
from kubernaut.storage.embedded import ensure_embedded_server
from kubernaut.storage.migrations import migrate

logger = logging.getLogger(__name__)


class StorageUnavailable(RuntimeError):
    """The database cannot be reached or refused the write; callers answer 503, never 500."""


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await register_vector(conn)


class Database:
    def __init__(self, pool: asyncpg.Pool, dsn_kind: str) -> None:
        self.pool = pool
        self.dsn_kind = dsn_kind

    @classmethod
    async def connect(cls, config: StorageConfig, *, run_migrations: bool = True,
                      application_name: str = "kubernaut") -> Database:
        if config.dsn is not None:
            dsn, kind = config.dsn.get_secret_value(), "external"
        else:
            dsn, kind = await asyncio.to_thread(ensure_embedded_server, config.data_dir), "embedded"
        # The extension must exist before register_vector runs on pooled connections.
        bootstrap = await asyncpg.connect(dsn, timeout=config.command_timeout_s)
        try:
            if run_migrations:
                await migrate(bootstrap)
            else:
                await bootstrap.execute("CREATE EXTENSION IF NOT EXISTS vector")
        finally:
            await bootstrap.close()
        pool = await asyncpg.create_pool(
            dsn,
            min_size=config.pool_min_size,
            max_size=config.pool_max_size,
            command_timeout=config.command_timeout_s,
            init=_init_connection,
            # Which service a backend serves, in pg_stat_activity (locks, slow queries, CPU per service).
            server_settings={"application_name": application_name[:63]},
        )
        logger.info("database pool ready (%s)", kind)
        return cls(pool, kind)

    async def ping(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2) as conn:
                return await conn.fetchval("SELECT 1") == 1
        except Exception:
            return False

    async def close(self) -> None:
        await self.pool.close()
