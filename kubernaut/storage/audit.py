"""Append-only, HMAC-chained audit trail: who did what, when, to which incident.

Each event commits to the previous one with HMAC-SHA256 under a key that is not in the database
(``storage.audit``: keys by id, one active), and names the key id that signed it, so keys rotate while old
events still verify. What is hashed is what is stored: the detail as PostgreSQL renders the stored JSONB
(``detail::text``), obtained by a round trip before the insert, so values JSON cannot keep (``-0.0``,
``1e400``, key order, unicode escapes) can never make a stored event fail verification. Values JSON cannot
hold at all (NaN, infinity) are refused before anything is written.

Events written before the chain was keyed (key_id NULL) form the legacy segment, verified with the old
unkeyed sha256; the first keyed event (``audit.chain_keyed``) links to its head. No unkeyed event may follow
a keyed one.

The chain head (sequence = event id, hash) is anchored outside the database at intervals
(:func:`anchor_head`: a log line, the gauge ``ray_kubernaut_audit_head_seq`` and optionally a JSON-lines
file); verification against the last anchor reports a deleted tail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel

from kubernaut.observability import metrics

logger = logging.getLogger(__name__)

_AUDIT_CHAIN_LOCK = 0x4B4E_4155_4449  # serializes appends so the chain has no forks

GENESIS = "0" * 64
TRANSITION_EVENT = "audit.chain_keyed"
_HMAC_DOMAIN = "kubernaut-audit-hmac-sha256-v1"


class AuditKeyError(RuntimeError):
    """No usable audit key: the configuration is missing or wrong. Appending refuses (fail closed)."""


class AuditKeyring:
    """The HMAC keys by id and the one that signs new events."""

    def __init__(self, keys: Mapping[str, bytes], active_key_id: str | None = None) -> None:
        if not keys:
            raise AuditKeyError("no audit key configured (storage.audit.keys / keys_file)")
        empty = sorted(key_id for key_id, secret in keys.items() if not secret)
        if empty:
            raise AuditKeyError(f"audit key(s) {empty} are empty")
        if active_key_id is None:
            if len(keys) != 1:
                raise AuditKeyError(f"storage.audit.active_key_id must name one of the keys {sorted(keys)}")
            active_key_id = next(iter(keys))
        if active_key_id not in keys:
            raise AuditKeyError(f"storage.audit.active_key_id {active_key_id!r} is not one of the keys {sorted(keys)}")
        self.keys = dict(keys)
        self.active_key_id = active_key_id

    def sign(self, key_id: str, message: bytes) -> str:
        return hmac.new(self.keys[key_id], message, hashlib.sha256).hexdigest()


_keyring: AuditKeyring | None = None
_anchor_path: Path | None = None


def configure(keyring: AuditKeyring | None, anchor_path: Path | None = None) -> None:
    """Set this process's keyring (Database.connect does, from ``storage.audit``) and anchor file."""
    global _keyring, _anchor_path
    _keyring, _anchor_path = keyring, anchor_path


def current_keyring() -> AuditKeyring:
    if _keyring is None:
        raise AuditKeyError("the audit keyring is not configured in this process (Database.connect sets it)")
    return _keyring


def local_key_file(data_dir: Path) -> Path:
    """Where the generated local key lives: next to the database files, never in the database."""
    return data_dir.with_name(f"{data_dir.name}-audit-keys.json")


def read_keys_file(path: Path) -> dict[str, bytes]:
    """A JSON object {key_id: secret} (a mounted Kubernetes Secret, or the generated local key)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AuditKeyError(f"cannot read audit keys file {path}: {exc}") from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in raw.items()):
        raise AuditKeyError(f"audit keys file {path} must hold a JSON object of non-empty strings {{key_id: secret}}")
    return {key_id: secret.encode() for key_id, secret in raw.items()}


def ensure_local_key(path: Path) -> dict[str, bytes]:
    """The local key, generated once (mode 0600). Written whole to a private file, then linked into place:
    the link fails if another replica got there first, so every replica reads one complete key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key_id = f"local-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(4)}"
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(json.dumps({key_id: secrets.token_urlsafe(32)}).encode())
        try:
            os.link(draft, path)
            logger.warning("generated the local audit key %s in %s: keep it with the data, it verifies the trail",
                           key_id, path)
        except FileExistsError:
            pass  # another replica generated it first: use that one
        finally:
            draft.unlink()
    return read_keys_file(path)


def keyring_from_config(audit_config: Any, data_dir: Path) -> AuditKeyring:
    """The keyring of ``storage.audit`` (an AuditConfig): configured keys, else the generated local key when
    ``local_key`` allows it, else refuse (fail closed)."""
    keys = {key_id: secret.get_secret_value().encode() for key_id, secret in audit_config.keys.items()}
    if audit_config.keys_file is not None:
        for key_id, secret in read_keys_file(Path(audit_config.keys_file)).items():
            if key_id in keys and keys[key_id] != secret:
                raise AuditKeyError(f"audit key {key_id!r} differs between storage.audit.keys and keys_file")
            keys[key_id] = secret
    if not keys:
        if not audit_config.local_key:
            raise AuditKeyError("no audit key configured: set storage.audit.keys or keys_file "
                                "(storage.audit.local_key is false)")
        keys = ensure_local_key(local_key_file(data_dir))
    return AuditKeyring(keys, audit_config.active_key_id)


# -- hashing ---------------------------------------------------------------------------------------------


def chain_hash(prev_hash: str, actor: str, event: str, incident_id: int | None, detail: dict[str, Any]) -> str:
    """The legacy, unkeyed link (events written before the chain was keyed)."""
    body = json.dumps([prev_hash, actor, event, incident_id, detail], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _at_text(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def keyed_message(prev_hash: str, key_id: str, at: datetime, actor: str, event: str, incident_id: int | None,
                  detail_text: str) -> bytes:
    """What one keyed link signs: every stored column but the id, the detail as its stored text."""
    return json.dumps([_HMAC_DOMAIN, prev_hash, key_id, _at_text(at), actor, event, incident_id, detail_text],
                      ensure_ascii=False, separators=(",", ":")).encode()


def _detail_json(event: str, detail: dict[str, Any]) -> str:
    if not isinstance(detail, dict):
        raise ValueError(f"audit event {event!r}: detail must be a JSON object")
    try:
        return json.dumps(detail, sort_keys=True, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError as exc:  # NaN, infinity (1e400 is a float infinity): JSON cannot hold them
        raise ValueError(f"audit event {event!r}: detail is not representable as JSON: {exc}") from None


# -- append ----------------------------------------------------------------------------------------------


async def append(
    conn: asyncpg.Connection, actor: str, event: str, incident_id: int | None, detail: dict[str, Any] | None = None
) -> None:
    """Append one event; must run inside the caller's transaction so it commits with the fact it audits."""
    await append_many(conn, actor, [(event, incident_id, detail or {})])


async def append_many(
    conn: asyncpg.Connection, actor: str, events: list[tuple[str, int | None, dict[str, Any]]]
) -> None:
    """Append several events in order, taking the chain lock once (a processor batch opening many incidents).

    Take it last in a transaction, after any row locks: every writer does, so none waits in a cycle.
    """
    if not events:
        return
    keyring = current_keyring()  # before any write: no key, no audit, no fact (fail closed)
    texts = [_detail_json(event, detail) for event, _, detail in events]
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_CHAIN_LOCK)
    head = await conn.fetchrow("SELECT id, hash, key_id FROM audit_events ORDER BY id DESC LIMIT 1")
    prev = head["hash"] if head else GENESIS
    batch: list[tuple[str, str, int | None, str]] = []
    if head is not None and head["key_id"] is None:
        # The first keyed event links the legacy segment: it names the head it continues.
        batch.append((actor, TRANSITION_EVENT, None,
                      json.dumps({"legacy_head_id": head["id"], "legacy_head_hash": prev, "algorithm": "hmac-sha256"},
                                 sort_keys=True)))
    batch.extend((actor, event, incident_id, text) for (event, incident_id, _), text in zip(events, texts, strict=True))
    # The stored text, as PostgreSQL renders the JSONB it will keep: what verification reads back.
    stored = await conn.fetchrow(
        "SELECT now() AS at, array(SELECT t::jsonb::text FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) "
        "ORDER BY n) AS texts", [text for *_, text in batch])
    at, key_id = stored["at"], keyring.active_key_id
    rows = []
    for (row_actor, event, incident_id, _), detail_text in zip(batch, stored["texts"], strict=True):
        digest = keyring.sign(key_id, keyed_message(prev, key_id, at, row_actor, event, incident_id, detail_text))
        rows.append((at, row_actor, event, incident_id, detail_text, prev, digest, key_id))
        prev = digest
    await conn.executemany(
        "INSERT INTO audit_events (at, actor, event, incident_id, detail, prev_hash, hash, key_id) "
        "VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8)", rows)


# -- verification ----------------------------------------------------------------------------------------


class Anchor(BaseModel):
    """A chain head recorded outside the database: the event id (sequence) and its hash."""

    seq: int
    hash: str
    source: str = "request"


class Segment(BaseModel):
    kind: Literal["legacy-sha256", "hmac-sha256"]
    first_id: int
    last_id: int
    events: int
    key_ids: list[str] = []


class Verification(BaseModel):
    intact: bool
    events: int  # events that verified before the first failure (all of them when intact)
    first_bad_event_id: int | None = None
    reason: str | None = None
    segments: list[Segment] = []
    head: Anchor | None = None
    anchor: Anchor | None = None


def _extend(segments: list[Segment], kind: Literal["legacy-sha256", "hmac-sha256"], row_id: int,
            key_id: str | None) -> None:
    if not segments or segments[-1].kind != kind:
        segments.append(Segment(kind=kind, first_id=row_id, last_id=row_id, events=0))
    segment = segments[-1]
    segment.last_id, segment.events = row_id, segment.events + 1
    if key_id is not None and key_id not in segment.key_ids:
        segment.key_ids.append(key_id)


async def verify_report(conn: asyncpg.Pool | asyncpg.Connection, batch_size: int = 1000,
                        keyring: AuditKeyring | None = None, anchor: Anchor | None = None) -> Verification:
    """Recompute the chain in id-ordered batches, then check it still reaches the anchored head.

    Constant memory and no long transaction, however long the trail: each batch is one short query
    continuing after the last id seen. Appends serialize on the chain lock until commit, so ids follow the
    chain and a row committed meanwhile is simply checked in a later batch. ``anchor`` defaults to the last
    line of ``storage.audit.anchor_path``.
    """
    keys = keyring or _keyring
    if anchor is None and _anchor_path is not None:
        anchor = read_anchor(_anchor_path)
    prev, last_id, checked, keyed_seen = GENESIS, 0, 0, False
    segments: list[Segment] = []
    head: Anchor | None = None
    anchor_found = False

    def failed(row_id: int, reason: str) -> Verification:
        return Verification(intact=False, events=checked, first_bad_event_id=row_id, reason=reason,
                            segments=segments, head=head, anchor=anchor)

    while True:
        rows = await conn.fetch(
            """SELECT id, at, actor, event, incident_id, detail, detail::text AS detail_text, prev_hash, hash, key_id
               FROM audit_events WHERE id > $1 ORDER BY id LIMIT $2""", last_id, batch_size)
        if not rows:
            break
        for row in rows:
            row_id, key_id = row["id"], row["key_id"]
            if row["prev_hash"] != prev:
                return failed(row_id, f"event {row_id} does not link to the event before it (deleted or reordered)")
            if key_id is None:
                if keyed_seen:
                    return failed(row_id, f"event {row_id} is unkeyed after the keyed chain began")
                if row["hash"] != chain_hash(prev, row["actor"], row["event"], row["incident_id"], row["detail"]):
                    return failed(row_id, f"event {row_id} does not match its hash (legacy sha256 segment)")
                _extend(segments, "legacy-sha256", row_id, None)
            else:
                if keys is None or key_id not in keys.keys:
                    return failed(row_id, f"event {row_id} is signed with audit key {key_id!r}, which is not "
                                          "configured: cannot verify")
                expected = keys.sign(key_id, keyed_message(prev, key_id, row["at"], row["actor"], row["event"],
                                                           row["incident_id"], row["detail_text"]))
                if not hmac.compare_digest(row["hash"], expected):
                    return failed(row_id, f"event {row_id} does not match its HMAC (key {key_id!r})")
                if not keyed_seen and prev != GENESIS and row["event"] != TRANSITION_EVENT:
                    return failed(row_id, f"event {row_id} starts the keyed chain without {TRANSITION_EVENT}")
                keyed_seen = True
                _extend(segments, "hmac-sha256", row_id, key_id)
            if anchor is not None and row_id == anchor.seq:
                if not hmac.compare_digest(row["hash"], anchor.hash):
                    return failed(row_id, f"event {row_id} does not match the anchored head (hash differs)")
                anchor_found = True
            prev = row["hash"]
            checked += 1
            head = Anchor(seq=row_id, hash=row["hash"], source="database")
        last_id = rows[-1]["id"]
    if anchor is not None and not anchor_found:
        kept = head.seq if head is not None and head.seq < anchor.seq else None
        if kept is not None or head is None:
            return Verification(intact=False, events=checked, first_bad_event_id=None,
                                reason=f"tail deleted after seq {kept or 0} (anchored head is seq {anchor.seq})",
                                segments=segments, head=head, anchor=anchor)
        return Verification(intact=False, events=checked, first_bad_event_id=None,
                            reason=f"the anchored event seq {anchor.seq} is missing", segments=segments,
                            head=head, anchor=anchor)
    return Verification(intact=True, events=checked, segments=segments, head=head, anchor=anchor)


async def verify(conn: asyncpg.Pool | asyncpg.Connection, batch_size: int = 1000) -> tuple[bool, int | None, int]:
    """(intact, id of the first bad row or None, events checked) — :func:`verify_report` in short."""
    report = await verify_report(conn, batch_size)
    return report.intact, report.first_bad_event_id, report.events


async def verify_chain(conn: asyncpg.Pool | asyncpg.Connection, batch_size: int = 1000) -> tuple[bool, int | None]:
    """Recompute the chain; (True, None) when intact, else (False, id of the first bad row)."""
    intact, first_bad, _ = await verify(conn, batch_size)
    return intact, first_bad


# -- anchoring -------------------------------------------------------------------------------------------


async def read_head(conn: asyncpg.Pool | asyncpg.Connection) -> Anchor | None:
    """The committed head of the chain."""
    row = await conn.fetchrow("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1")
    return Anchor(seq=row["id"], hash=row["hash"], source="database") if row else None


def read_anchor(path: Path) -> Anchor | None:
    """The highest anchored head in the JSON-lines file ``path``; None when there is no file yet.

    An unreadable line is skipped with a warning (a torn last write), never taken as an anchor.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    best: Anchor | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            found = Anchor.model_validate({**json.loads(line), "source": str(path)})
        except ValueError:
            logger.warning("audit anchor file %s: line %d is not an anchor; skipped", path, number)
            continue
        if best is None or found.seq > best.seq:
            best = found
    return best


def write_anchor(path: Path, head: Anchor) -> None:
    """Append one anchor line; O_APPEND keeps concurrent replicas' lines whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"seq": head.seq, "hash": head.hash, "at": datetime.now(timezone.utc).isoformat()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def anchor_head(conn: asyncpg.Pool | asyncpg.Connection, path: Path | None = None) -> Anchor | None:
    """Record the committed head outside the database: log line, gauge, and ``path`` when set."""
    head = await read_head(conn)
    if head is None:
        return None
    logger.info("audit chain head seq=%d hash=%s", head.seq, head.hash)
    metrics.audit_head(head.seq)
    target = path if path is not None else _anchor_path
    if target is not None:
        write_anchor(target, head)
    return head
