"""One asyncpg pool per replica, on an external server or the embedded one: same code path."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import asyncpg
from pgvector.asyncpg import register_vector

from kubernaut.config.settings import StorageConfig
from kubernaut.storage import audit
from kubernaut.storage.embedded import dsn_with_user, ensure_embedded_server
from kubernaut.storage.migrations import migrate
from kubernaut.storage.roles import RoleSeparation, check_separation

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


async def _current_user(dsn: str, config: StorageConfig) -> str:
    conn = await asyncpg.connect(dsn, timeout=config.command_timeout_s)
    try:
        return str(await conn.fetchval("SELECT current_user"))
    finally:
        await conn.close()


class StorageRolesError(RuntimeError):
    """The app role could rewrite the audit trail and ``storage.require_role_separation`` refuses that."""


class Database:
    def __init__(self, pool: asyncpg.Pool, dsn_kind: str, dsn: str | None = None,
                 config: StorageConfig | None = None, role_separation: RoleSeparation | None = None) -> None:
        self.pool = pool
        self.dsn_kind = dsn_kind
        self._dsn = dsn
        self._config = config
        # What the pools' role could do to the audit trail (None: not checked, a Database built by hand).
        self.role_separation = role_separation
        self._anchor_task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, config: StorageConfig, *, run_migrations: bool = True,
                      application_name: str = "kubernaut") -> Database:
        # No key, no audit trail, no start (fail closed): every replica appends audit events.
        keyring = await asyncio.to_thread(audit.keyring_from_config, config.audit, config.data_dir)
        audit.configure(keyring, config.audit.anchor_path)
        if config.dsn is not None:
            dsn, kind = config.dsn.get_secret_value(), "external"
            owner = config.migration_dsn.get_secret_value() if config.migration_dsn is not None else None
            app_role = await _current_user(dsn, config) if owner is not None else None
        else:
            # The superuser of the data directory owns the schema; the pools log in as the app role.
            owner = await asyncio.to_thread(ensure_embedded_server, config.data_dir)
            app_role, kind = config.app_role, "embedded"
            dsn = dsn_with_user(owner, app_role)
        # The extension must exist before register_vector runs on pooled connections.
        bootstrap = await asyncpg.connect(owner or dsn, timeout=config.command_timeout_s)
        try:
            await migrate(bootstrap, app_role=app_role, create_role=kind == "embedded", apply=run_migrations)
        finally:
            await bootstrap.close()
        pool = await _create_pool(dsn, config, config.pool_min_size, config.pool_max_size, application_name)
        async with pool.acquire() as conn:
            separation = await check_separation(conn)
        if not separation.separated:
            why = "; ".join(separation.problems)
            if config.require_role_separation:
                await pool.close()
                raise StorageRolesError(f"database role {separation.role!r} could rewrite the audit trail ({why}); "
                                        "set storage.migration_dsn to the owner role and storage.dsn to an app role")
            logger.warning("database role %r could rewrite the audit trail (%s): set storage.migration_dsn to the "
                           "owner role so the app role only gets INSERT/SELECT on audit tables", separation.role, why)
        logger.info("database pool ready (%s)", kind)
        database = cls(pool, kind, dsn, config, separation)
        database._anchor_task = asyncio.get_running_loop().create_task(
            database._anchor_loop(config.audit.anchor_interval_s, config.audit.anchor_path))
        return database

    async def _anchor_loop(self, interval_s: float, path: Path | None) -> None:
        """Anchor the audit chain head outside the database whenever it moved (kubernaut/storage/audit.py)."""
        last: int | None = None
        while True:
            try:
                head = await audit.read_head(self.pool)
                if head is not None and head.seq != last:
                    await audit.anchor_head(self.pool, path)
                    last = head.seq
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be down for a while: anchor again next time
                logger.warning("cannot anchor the audit chain head", exc_info=True)
            await asyncio.sleep(interval_s)

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
        if self._anchor_task is not None:
            self._anchor_task.cancel()
        await self.pool.close()
