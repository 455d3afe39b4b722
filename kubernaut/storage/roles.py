"""Two database roles: the owner runs migrations, the app role runs the application.

The app role may read and write the operational tables but only INSERT and SELECT the audit trail, so a
compromised replica cannot rewrite history: it can neither UPDATE, DELETE nor TRUNCATE ``audit_events``,
nor disable its triggers (only the owner can). Grants are re-applied after every start-up migration so
tables added later are covered.
"""

from __future__ import annotations

import re

import asyncpg
from pydantic import BaseModel

# Tables that are append-only for the app role.
AUDIT_TABLES = ("audit_events",)

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _ROLE_NAME.fullmatch(name):
        raise ValueError(f"not a plain role name: {name!r}")
    return f'"{name}"'


async def ensure_login_role(owner: asyncpg.Connection, role: str) -> None:
    """Create ``role`` (LOGIN, no superuser, no CREATEROLE) if it does not exist; concurrent starts race safely."""
    exists = await owner.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
    if exists:
        return
    try:
        await owner.execute(f"CREATE ROLE {_ident(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
    except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
        pass  # another replica created it first


async def grant_app_role(owner: asyncpg.Connection, role: str) -> None:
    """Give ``role`` what the application needs and no more on the audit tables. Run by the owner."""
    ident = _ident(role)
    database = await owner.fetchval("SELECT quote_ident(current_database())")
    await owner.execute(f"""
        GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {ident};
        GRANT USAGE ON SCHEMA public TO {ident};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ident};
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ident};
        REVOKE ALL ON schema_migrations FROM {ident};
        GRANT SELECT ON schema_migrations TO {ident};
    """)
    for table in AUDIT_TABLES:
        await owner.execute(f"REVOKE ALL ON {table} FROM {ident}; GRANT SELECT, INSERT ON {table} TO {ident}")


class RoleSeparation(BaseModel):
    """Whether the connected role is kept from rewriting the audit trail; ``problems`` says why not."""

    role: str
    separated: bool
    problems: list[str]


async def check_separation(app: asyncpg.Connection) -> RoleSeparation:
    """What the role of ``app`` could do to the audit tables (superuser, owner or member of it, grants)."""
    row = await app.fetchrow("SELECT current_user AS role, rolsuper FROM pg_roles WHERE rolname = current_user")
    problems: list[str] = []
    if row["rolsuper"]:
        problems.append("the role is a superuser")
    for table in AUDIT_TABLES:
        owner = await app.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = to_regclass($1)", table)
        if owner is None:
            problems.append(f"{table} does not exist")
            continue
        if await app.fetchval("SELECT pg_has_role(current_user, $1, 'MEMBER')", owner):
            problems.append(f"the role owns {table} (or is a member of its owner {owner})")
        for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
            if await app.fetchval("SELECT has_table_privilege($1, $2)", table, privilege):
                problems.append(f"the role may {privilege} {table}")
    return RoleSeparation(role=row["role"], separated=not problems, problems=problems)
