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


# The server is unreachable, overloaded, shutting down or cancelled the statement, or two transactions
# collided: nothing says the data is at fault, and the same work may succeed later.
_TRANSIENT = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
              asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError, asyncpg.InsufficientResourcesError,
              asyncpg.OperatorInterventionError, asyncpg.TransactionRollbackError)


def transient(exc: BaseException) -> bool:
    """Whether retrying the same work later may succeed (as opposed to: this data can never be handled).
    A value the driver cannot encode is an InterfaceError (and a ValueError) but never transient."""
    return isinstance(exc, _TRANSIENT) and not isinstance(exc, ValueError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await register_vector(conn)


async def _create_pool(dsn: str, config: StorageConfig, min_size: int, max_size: int,
                       application_name: str) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=config.command_timeout_s,
        init=_init_connection,
        # Which service a backend serves, in pg_stat_activity (locks, slow queries, CPU per service).
        server_settings={"application_name": application_name[:63]},
    )


class Database:
    def __init__(self, pool: asyncpg.Pool, dsn_kind: str, dsn: str | None = None,
                 config: StorageConfig | None = None) -> None:
        self.pool = pool
        self.dsn_kind = dsn_kind
        self._dsn = dsn
        self._config = config

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
        pool = await _create_pool(dsn, config, config.pool_min_size, config.pool_max_size, application_name)
        logger.info("database pool ready (%s)", kind)
        return cls(pool, kind, dsn, config)

    async def extra_pool(self, size: int, application_name: str) -> asyncpg.Pool:
        """A second pool on the same server for one path that must not wait behind the others (the gateway's
        webhook commits behind API reads)."""
        if self._dsn is None or self._config is None:
            raise RuntimeError("extra_pool needs a Database made by Database.connect")
        return await _create_pool(self._dsn, self._config, min(1, size), size, application_name)

    async def ping(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2) as conn:
                return await conn.fetchval("SELECT 1") == 1
        except Exception:
            return False

    async def close(self) -> None:
        await self.pool.close()
