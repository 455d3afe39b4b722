"""The audit trail against real PostgreSQL (issue 12): a keyed chain, an app role that can only append,
a TRUNCATE trigger, anchors that reveal a deleted tail, key rotation, the upgrade of an unkeyed chain and
canonical hashing of what is stored."""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from kubernaut.config.settings import AuditConfig, StorageConfig
from kubernaut.observability import metrics
from kubernaut.storage import audit
from kubernaut.storage.database import Database, StorageRolesError, _init_connection
from kubernaut.storage.embedded import dsn_with_user
from kubernaut.storage.migrations import MigrationPrivilegeError, available_migrations

pytestmark = pytest.mark.integration

K1, K2 = "k1-secret-0123456789abcdef", "k2-secret-fedcba9876543210"


async def app_role_dsn(owner_dsn: str) -> str:
    """A fresh login role with no rights of its own (the embedded server trusts its socket)."""
    role = f"app_{uuid.uuid4().hex[:10]}"
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute(f"CREATE ROLE {role} LOGIN")
    finally:
        await owner.close()
    return dsn_with_user(owner_dsn, role)


def audit_config(keys: dict[str, str], active: str | None = None, **extra: object) -> AuditConfig:
    return AuditConfig(keys={k: SecretStr(v) for k, v in keys.items()}, active_key_id=active, local_key=False,
                       **extra)


async def connect_separated(owner_dsn: str, app_dsn: str, audit_cfg: AuditConfig) -> Database:
    return await Database.connect(StorageConfig(dsn=SecretStr(app_dsn), migration_dsn=SecretStr(owner_dsn),
                                                require_role_separation=True, pool_max_size=4, audit=audit_cfg))


async def owner_conn(owner_dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(owner_dsn)
    await _init_connection(conn)
    return conn


async def append(database: Database, events: list[tuple[str, int | None, dict]], actor: str = "test") -> None:
    async with database.pool.acquire() as conn, conn.transaction():
        await audit.append_many(conn, actor, events)


async def test_app_role_only_appends_and_owner_tampering_is_detected(fresh_dsn: str) -> None:
    database = await connect_separated(fresh_dsn, await app_role_dsn(fresh_dsn), audit_config({"k1": K1}))
    owner = await owner_conn(fresh_dsn)
    try:
        assert database.role_separation is not None and database.role_separation.separated, database.role_separation
        await append(database, [("event", None, {"i": i}) for i in range(6)])
        assert (await audit.verify_report(database.pool)).intact
        async with database.pool.acquire() as app:
            for statement in ("UPDATE audit_events SET actor = 'mallory' WHERE id = 3",
                              "DELETE FROM audit_events WHERE id = 6",
                              "TRUNCATE audit_events",
                              "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update"):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await app.execute(statement)
        # The owner is stopped from TRUNCATE by the statement trigger too.
        with pytest.raises(asyncpg.RaiseError, match="TRUNCATE refused"):
            await owner.execute("TRUNCATE audit_events")
        assert await owner.fetchval("SELECT count(*) FROM audit_events") == 6
        # The owner bypasses the triggers and edits one row: without the key it cannot re-sign it.
        await owner.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
        await owner.execute("""UPDATE audit_events SET detail = '{"i": 999}' WHERE id = 3""")
        report = await audit.verify_report(database.pool)
        assert (report.intact, report.first_bad_event_id, report.events) == (False, 3, 2)
        assert "HMAC" in (report.reason or "")
        # Re-hashing the whole chain the unkeyed way (what the old chain allowed) is no way out: an unkeyed
        # event after the keyed chain began is refused.
        await owner.execute("""UPDATE audit_events SET detail = '{"i": 2}' WHERE id = 3""")
        assert (await audit.verify_report(database.pool)).intact  # restored exactly: verifies again
        head = await owner.fetchrow("SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1")
        forged = audit.chain_hash(head["hash"], "mallory", "event", None, {"i": 6})
        await owner.execute("INSERT INTO audit_events (actor, event, detail, prev_hash, hash) VALUES "
                            "('mallory', 'event', '{\"i\": 6}', $1, $2)", head["hash"], forged)
        report = await audit.verify_report(database.pool)
        assert (report.intact, report.first_bad_event_id) == (False, 7)
        assert "unkeyed after the keyed chain began" in (report.reason or "")
    finally:
        await owner.close()
        await database.close()


async def test_require_role_separation_refuses_a_role_that_could_rewrite_the_trail(fresh_dsn: str) -> None:
    # One superuser DSN and no migration_dsn: the grants cannot separate anything.
    config = StorageConfig(dsn=SecretStr(fresh_dsn), require_role_separation=True, audit=audit_config({"k1": K1}))
    with pytest.raises(StorageRolesError, match="superuser"):
        await Database.connect(config)
    relaxed = await Database.connect(config.model_copy(update={"require_role_separation": False}))
    try:
        assert relaxed.role_separation is not None and not relaxed.role_separation.separated
    finally:
        await relaxed.close()


async def test_the_app_role_alone_cannot_migrate_but_starts_on_a_migrated_database(fresh_dsn: str) -> None:
    app_dsn = await app_role_dsn(fresh_dsn)
    app_only = StorageConfig(dsn=SecretStr(app_dsn), require_role_separation=True, audit=audit_config({"k1": K1}))
    with pytest.raises(MigrationPrivilegeError, match=r"storage\.migration_dsn"):
        await Database.connect(app_only)
    migrated = await connect_separated(fresh_dsn, app_dsn, audit_config({"k1": K1}))
    await migrated.close()
    # Up to date: no DDL needed, the grants are in place, the app role starts without the owner's DSN.
    database = await Database.connect(app_only)
    try:
        assert database.role_separation is not None and database.role_separation.separated
        await append(database, [("event", None, {"i": 1})])
        assert (await audit.verify_report(database.pool)).intact
    finally:
        await database.close()


async def test_a_deleted_tail_is_detected_against_the_anchor(fresh_dsn: str, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors" / "audit-head.jsonl"
    database = await connect_separated(fresh_dsn, await app_role_dsn(fresh_dsn),
                                       audit_config({"k1": K1}, anchor_path=anchors, anchor_interval_s=0.2))
    owner = await owner_conn(fresh_dsn)
    try:
        await append(database, [("event", None, {"i": i}) for i in range(5)])
        # The replica's anchor loop records the committed head: file, gauge and log line.
        for _ in range(50):
            anchored = audit.read_anchor(anchors)
            if anchored is not None and anchored.seq == 5:
                break
            await asyncio.sleep(0.1)
        assert anchored is not None and anchored.seq == 5
        assert stat.S_IMODE(anchors.stat().st_mode) == 0o600
        assert b"kubernaut_audit_head_seq 5.0" in metrics.render_local()[0]
        await append(database, [("event", None, {"i": i}) for i in range(5, 8)])
        assert (await audit.anchor_head(database.pool)).seq == 8  # type: ignore[union-attr]
        assert (await audit.verify_report(database.pool)).intact
        # The owner deletes the last three events: the chain itself still links up...
        await owner.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
        await owner.execute("DELETE FROM audit_events WHERE id > 5")
        # ...but not to the anchored head (the last line of the anchor file is the default).
        report = await audit.verify_report(database.pool)
        assert not report.intact and report.reason is not None
        assert report.reason.startswith("tail deleted after seq 5"), report.reason
        # An anchor kept elsewhere (the log line, the metric) works the same, passed explicitly.
        explicit = await audit.verify_report(database.pool, anchor=audit.Anchor(seq=5, hash=anchored.hash))
        assert explicit.intact
        wrong = await audit.verify_report(database.pool, anchor=audit.Anchor(seq=5, hash="0" * 64))
        assert not wrong.intact and wrong.first_bad_event_id == 5
    finally:
        await owner.close()
        await database.close()


async def test_key_rotation_verifies_and_a_removed_key_fails_closed(fresh_dsn: str) -> None:
    app_dsn = await app_role_dsn(fresh_dsn)
    first = await connect_separated(fresh_dsn, app_dsn, audit_config({"k1": K1}))
    try:
        await append(first, [("before-rotation", None, {"i": i}) for i in range(3)])
    finally:
        await first.close()
    rotated = await connect_separated(fresh_dsn, app_dsn, audit_config({"k1": K1, "k2": K2}, active="k2"))
    try:
        await append(rotated, [("after-rotation", None, {"i": i}) for i in range(3)])
        keys = await rotated.pool.fetch("SELECT key_id FROM audit_events ORDER BY id")
        assert [r["key_id"] for r in keys] == ["k1"] * 3 + ["k2"] * 3
        report = await audit.verify_report(rotated.pool)
        assert report.intact and report.events == 6
        assert [(s.kind, s.key_ids) for s in report.segments] == [("hmac-sha256", ["k1", "k2"])]
        # k1 removed from the configuration: its events cannot be verified, and verification says which key.
        only_k2 = audit.AuditKeyring({"k2": K2.encode()})
        report = await audit.verify_report(rotated.pool, keyring=only_k2)
        assert (report.intact, report.first_bad_event_id) == (False, 1)
        assert "'k1'" in (report.reason or "") and "not configured" in (report.reason or "")
        # The right id with another secret is a forgery, not a rotation.
        wrong = audit.AuditKeyring({"k1": b"another-secret-0123456789", "k2": K2.encode()}, "k2")
        assert (await audit.verify_report(rotated.pool, keyring=wrong)).first_bad_event_id == 1
    finally:
        await rotated.close()


async def migrate_to(dsn: str, last_version: int) -> None:
    """The schema as a release before the keyed chain left it."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
                              applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
        for version, name, sql in available_migrations():
            if version <= last_version:
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name)
    finally:
        await conn.close()


async def test_an_unkeyed_chain_upgrades_to_a_legacy_segment_linked_to_the_keyed_one(fresh_dsn: str) -> None:
    keyed_version = next(v for v, name, _ in available_migrations() if name == "audit_keyed_chain")
    await migrate_to(fresh_dsn, keyed_version - 1)
    old = await owner_conn(fresh_dsn)
    try:
        prev = audit.GENESIS
        for i in range(3):  # exactly how the unkeyed release appended
            detail = {"i": i, "by": "alice"}
            digest = audit.chain_hash(prev, "legacy", "event", None, detail)
            await old.execute("INSERT INTO audit_events (actor, event, incident_id, detail, prev_hash, hash) "
                              "VALUES ($1, $2, $3, $4, $5, $6)", "legacy", "event", None, detail, prev, digest)
            prev = digest
    finally:
        await old.close()
    database = await connect_separated(fresh_dsn, await app_role_dsn(fresh_dsn), audit_config({"k1": K1}))
    try:
        report = await audit.verify_report(database.pool)
        assert report.intact and [s.kind for s in report.segments] == ["legacy-sha256"]
        await append(database, [("event", None, {"i": 3})])
        rows = await database.pool.fetch("SELECT id, event, key_id, detail, prev_hash FROM audit_events ORDER BY id")
        assert [(r["event"], r["key_id"]) for r in rows] == [("event", None)] * 3 + [
            (audit.TRANSITION_EVENT, "k1"), ("event", "k1")]
        assert rows[3]["detail"] == {"legacy_head_id": 3, "legacy_head_hash": prev, "algorithm": "hmac-sha256"}
        assert rows[3]["prev_hash"] == prev
        report = await audit.verify_report(database.pool)
        assert report.intact and report.events == 5
        assert [(s.kind, s.first_id, s.last_id) for s in report.segments] == [
            ("legacy-sha256", 1, 3), ("hmac-sha256", 4, 5)]
        # The legacy segment is still checked: an edit there is found.
        owner = await owner_conn(fresh_dsn)
        try:
            await owner.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
            await owner.execute("""UPDATE audit_events SET detail = '{"i": 1, "by": "mallory"}' WHERE id = 2""")
        finally:
            await owner.close()
        assert (await audit.verify(database.pool)) == (False, 2, 1)
    finally:
        await database.close()


async def test_what_is_stored_is_what_is_hashed(fresh_dsn: str) -> None:
    database = await connect_separated(fresh_dsn, await app_role_dsn(fresh_dsn), audit_config({"k1": K1}))
    try:
        awkward = {"negative_zero": -0.0, "big": 1e20, "tiny": 5e-324, "huge_int": 2**70, "tenth": 0.1,
                   "z": 1, "a": {"é": "✓ \u2028 \"quoted\" \\ ", "nested": [-0.0, 1.0, 1e-7]}, "": None}
        await append(database, [("event", None, awkward), ("event", None, {"x": -0.0})])
        report = await audit.verify_report(database.pool)
        assert report.intact and report.events == 2, report.reason
        # JSON cannot hold NaN or infinity (1e400 is a float infinity): refused before anything is written.
        for bad in (float("inf"), float("nan"), 1e400):
            with pytest.raises(ValueError, match="not representable as JSON"):
                await append(database, [("event", None, {"value": bad})])
        assert await database.pool.fetchval("SELECT count(*) FROM audit_events") == 2
    finally:
        await database.close()


async def test_no_key_configured_refuses_to_start(fresh_dsn: str) -> None:
    config = StorageConfig(dsn=SecretStr(fresh_dsn), audit=AuditConfig(local_key=False))
    with pytest.raises(audit.AuditKeyError, match="no audit key configured"):
        await Database.connect(config)


async def test_the_embedded_server_runs_the_app_as_its_own_role(pg_data_dir: Path, pg_dsn: str) -> None:
    database = await Database.connect(StorageConfig(data_dir=pg_data_dir, pool_max_size=2))
    try:
        assert database.dsn_kind == "embedded"
        separation = database.role_separation
        assert separation is not None and separation.separated and separation.role == "kubernaut_app", separation
        assert await database.pool.fetchval("SELECT current_user") == "kubernaut_app"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await database.pool.execute("DELETE FROM audit_events WHERE id < 0")
        # The generated local key lives beside the data directory, readable by its owner only.
        key_file = audit.local_key_file(pg_data_dir)
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        (key_id,) = json.loads(key_file.read_text())
        assert audit.current_keyring().active_key_id == key_id
        assert not str(key_file).startswith(str(pg_data_dir) + "/")
    finally:
        await database.close()
