"""Versioned SQL migrations, applied at start-up by whichever replica gets the lock first."""

from __future__ import annotations

import logging
import re
from importlib import resources

import asyncpg

from kubernaut.storage import roles

logger = logging.getLogger(__name__)

class MigrationPrivilegeError(RuntimeError):
    """A pending migration cannot run with this role (the app role): the owner must run it."""


# Arbitrary constant: serializes migrations when many replicas start at once.
_MIGRATION_LOCK_ID = 0x4B55_4245_524E


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of the packaged migrations, in order."""
    found = []
    for entry in resources.files("kubernaut.storage").joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found)


async def migrate(conn: asyncpg.Connection, *, app_role: str | None = None, create_role: bool = False,
                  apply: bool = True) -> list[int]:
    """Apply pending migrations, each in its own transaction; returns the versions applied.

    ``conn`` is the owner's. With ``app_role`` the application's role then gets its grants (created first
    when ``create_role``: the embedded server), under the same lock so replicas starting at once do not
    race on the catalog. ``apply=False`` only makes sure of the extension and the grants.
    """
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        if not apply:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await _grant(conn, app_role, create_role)
            return applied
        # Only DDL when something is pending: an app role (no CREATE on the schema) then starts fine on an
        # up-to-date database, and says clearly when the owner has migrations to run.
        exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")} if exists else set()
        if not exists:
            try:
                await conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                           applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"""
                )
            except asyncpg.InsufficientPrivilegeError as exc:
                raise MigrationPrivilegeError(f"the schema needs the owner role ({exc}): set storage.migration_dsn"
                                              ) from exc
        for version, name, sql in available_migrations():
            if version in done:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                       version, name)
            except asyncpg.InsufficientPrivilegeError as exc:
                raise MigrationPrivilegeError(
                    f"migration {version:04d}_{name} needs the owner role ({exc}): set storage.migration_dsn"
                ) from exc
            logger.info("applied migration %04d_%s", version, name)
            applied.append(version)
        await _grant(conn, app_role, create_role)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied


async def _grant(conn: asyncpg.Connection, app_role: str | None, create_role: bool) -> None:
    if app_role is None:
        return
    if app_role == await conn.fetchval("SELECT current_user"):
        # Revoking from the owner would take its own rights away and separate nothing.
        logger.warning("storage.migration_dsn and storage.dsn log in as the same role %r: audit grants not set",
                       app_role)
        return
    if create_role:
        await roles.ensure_login_role(conn, app_role)
    await roles.grant_app_role(conn, app_role)
