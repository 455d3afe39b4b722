"""The audit keys and anchors without a database (issue 12): configuration fails closed, the local key is
generated once with owner-only permissions, anchors are read as the highest head recorded."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from kubernaut.config.settings import AuditConfig, StorageConfig
from kubernaut.storage import audit

SECRET = "0123456789abcdef-secret"


def test_keys_must_have_ids_and_real_secrets() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        AuditConfig(keys={"k1": SecretStr("")})
    with pytest.raises(ValidationError, match="key id"):
        AuditConfig(keys={"bad id/..": SecretStr(SECRET)})
    with pytest.raises(ValidationError):
        StorageConfig(audit={"keys": {"k1": SECRET}, "unknown": 1})
    config = StorageConfig(audit={"keys": {"k1": SECRET}})
    assert config.audit.keys["k1"].get_secret_value() == SECRET and "secret" not in repr(config.audit)


def test_the_keyring_fails_closed() -> None:
    with pytest.raises(audit.AuditKeyError, match="no audit key"):
        audit.AuditKeyring({})
    with pytest.raises(audit.AuditKeyError, match="active_key_id must name one"):
        audit.AuditKeyring({"a": b"x" * 16, "b": b"y" * 16})
    with pytest.raises(audit.AuditKeyError, match="is not one of the keys"):
        audit.AuditKeyring({"a": b"x" * 16}, "b")
    with pytest.raises(audit.AuditKeyError, match="empty"):
        audit.AuditKeyring({"a": b""})
    assert audit.AuditKeyring({"a": b"x" * 16}).active_key_id == "a"


def test_no_key_and_no_local_key_refuses(tmp_path: Path) -> None:
    with pytest.raises(audit.AuditKeyError, match="local_key is false"):
        audit.keyring_from_config(AuditConfig(local_key=False), tmp_path / "data")
    assert not list(tmp_path.iterdir())


def test_the_local_key_is_generated_once_outside_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = audit.keyring_from_config(AuditConfig(), data_dir)
    second = audit.keyring_from_config(AuditConfig(), data_dir)
    assert first.keys == second.keys and first.active_key_id == second.active_key_id
    key_file = audit.local_key_file(data_dir)
    assert key_file.parent == tmp_path and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert list(json.loads(key_file.read_text())) == [first.active_key_id]


def test_keys_file_and_config_keys_merge_and_must_agree(tmp_path: Path) -> None:
    secret_file = tmp_path / "audit-keys.json"
    secret_file.write_text(json.dumps({"2026-01": SECRET, "2026-06": SECRET[::-1]}))
    keyring = audit.keyring_from_config(AuditConfig(keys_file=secret_file, active_key_id="2026-06"), tmp_path / "d")
    assert sorted(keyring.keys) == ["2026-01", "2026-06"] and keyring.active_key_id == "2026-06"
    clash = AuditConfig(keys={"2026-01": SecretStr("another-secret-value")}, keys_file=secret_file,
                        active_key_id="2026-01")
    with pytest.raises(audit.AuditKeyError, match="differs"):
        audit.keyring_from_config(clash, tmp_path / "d")
    secret_file.write_text('{"k": ""}')
    with pytest.raises(audit.AuditKeyError, match="non-empty strings"):
        audit.keyring_from_config(AuditConfig(keys_file=secret_file), tmp_path / "d")
    with pytest.raises(audit.AuditKeyError, match="cannot read"):
        audit.keyring_from_config(AuditConfig(keys_file=tmp_path / "missing.json"), tmp_path / "d")


def test_the_keyed_link_covers_every_column_and_the_key() -> None:
    keyring = audit.AuditKeyring({"a": b"x" * 16, "b": b"y" * 16}, "a")
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    base = ("0" * 64, "a", at, "alice", "approval.decided", 7, '{"n": 1}')
    digest = keyring.sign("a", audit.keyed_message(*base))
    for index, changed in ((0, "1" * 64), (2, at.replace(microsecond=0)), (3, "mallory"), (4, "x"), (5, 8),
                           (6, '{"n": 2}')):
        other = list(base)
        other[index] = changed
        assert keyring.sign("a", audit.keyed_message(*other)) != digest
    assert keyring.sign("b", audit.keyed_message(*base)) != digest
    # The same instant in another time zone is the same event.
    moved = list(base)
    moved[2] = at.astimezone(timezone(timedelta(hours=2)))
    assert keyring.sign("a", audit.keyed_message(*moved)) == digest


def test_the_highest_anchor_wins_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "anchors.jsonl"
    assert audit.read_anchor(path) is None
    audit.write_anchor(path, audit.Anchor(seq=9, hash="a" * 64))
    audit.write_anchor(path, audit.Anchor(seq=4, hash="b" * 64))  # a replica that anchored after a tail deletion
    with path.open("a") as handle:
        handle.write('{"seq": 12, "ha')
    anchor = audit.read_anchor(path)
    assert anchor is not None and (anchor.seq, anchor.hash, anchor.source) == (9, "a" * 64, str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_replicas_generating_the_local_key_at_once_agree(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    data_dir = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:
        keyrings = list(pool.map(lambda _: audit.keyring_from_config(AuditConfig(), data_dir), range(16)))
    assert len({(k.active_key_id, k.keys[k.active_key_id]) for k in keyrings}) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name != "data"] == [audit.local_key_file(data_dir).name]
