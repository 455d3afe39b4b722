"""Incident histories written straight into PostgreSQL for the tests that read them back (intelligence, learning,
effectiveness, retention, paging): incidents with alerts and an analysis, actions, assessments."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg

from kubernaut.config.settings import StorageConfig
from kubernaut.storage.database import Database

_seq = itertools.count(1)


NOW = datetime.now(timezone.utc)


async def seed_incident(conn: asyncpg.Connection | asyncpg.Pool, *, signals: list[str], kind: str = "Deployment",
                        name: str = "web", namespace: str = "shop", facts: dict[str, Any] | None = None,
                        first_seen: datetime | None = None, action: str = "notify_only",
                        alert_labels: dict[str, str] | None = None, status: str = "resolved") -> int:
    """An incident with its first alert(s) and an analysis; returns the incident id."""
    seen = first_seen or NOW - timedelta(hours=1)
    incident_id = await conn.fetchval(
        """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                  severity, environment, status, first_seen, last_seen, created_at)
           VALUES ($1, $2, $3, $4, 'labels', $5, 'critical', 'production', $6, $7, $7, $7) RETURNING id""",
        f"{namespace}:{kind}:{name}", kind, name, namespace, signals, status, seen)
    for signal in signals:
        labels = {"alertname": signal, "namespace": namespace, "deployment": name, **(alert_labels or {})}
        await conn.execute(
            """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, namespace, labels, starts_at,
                                   dedup_key, incident_id, received_at)
               VALUES ('r', $1, $2, 'firing', $3, $4, $5, $6, $7, $5)""",
            f"fp-{incident_id}-{signal}", signal, namespace, labels, seen, f"k-{uuid.uuid4().hex}", incident_id)
    await conn.execute(
        """INSERT INTO analyses (incident_id, engine, action, target, confidence, root_cause, facts, created_at)
           VALUES ($1, 'rules', $2, $3, 0.9, 'seeded', $4, $5)""",
        incident_id, action, {"kind": kind, "name": name, "namespace": namespace}, facts or {}, seen)
    return incident_id


async def seed_action(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, action: str, *,
                      at: datetime | None = None, parameters: dict[str, Any] | None = None,
                      target: dict[str, Any] | None = None, dry_run: bool = False) -> int:
    """A live, succeeded action of a workflow on the incident (with its execute step); returns the action id."""
    incident = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    at = at or NOW
    target = target or {"kind": incident["target_kind"], "name": incident["target_name"],
                        "namespace": incident["target_namespace"]}
    analysis_id = await conn.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, target, confidence, root_cause, parameters)
           VALUES ($1, 'rules', $2, $3, 0.9, 'seeded', $4) RETURNING id""",
        incident_id, action, target, parameters or {})
    signature = f"{incident['signals'][0]}:{incident['target_kind']}"
    workflow_id = await conn.fetchval(
        """INSERT INTO workflows (incident_id, analysis_id, phase, dry_run, signature, target_key)
           VALUES ($1, $2, 'verifying', $3, $4, $5) RETURNING id""",
        incident_id, analysis_id, dry_run, signature,
        f"{target.get('namespace') or '_cluster'}:{target['kind']}:{target['name']}")
    action_id = await conn.fetchval(
        """INSERT INTO actions (workflow_id, incident_id, action, target, parameters, idempotency_key, dry_run, status,
                                created_at, finished_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 'succeeded', $8, $8) RETURNING id""",
        workflow_id, incident_id, action, target, parameters or {}, f"workflow-{workflow_id}-execute:0-{next(_seq)}",
        dry_run, at)
    await conn.execute(
        """INSERT INTO workflow_steps (workflow_id, seq, name, status, finished_at, action_id, kind)
           VALUES ($1, 1, 'execute:0', 'succeeded', $2, $3, 'action')""", workflow_id, at, action_id)
    return action_id


async def seed_assessment(conn: asyncpg.Connection | asyncpg.Pool, action_id: int, verdict: str,
                          score: float | None = None, recovered_after_s: float | None = None) -> None:
    """A final assessment as the Effectiveness Monitor stores it (for mining tests that need many)."""
    a = await conn.fetchrow(
        """SELECT x.*, i.signals, i.target_kind AS ikind, w.signature FROM actions x
           JOIN incidents i ON i.id = x.incident_id JOIN workflows w ON w.id = x.workflow_id WHERE x.id = $1""",
        action_id)
    target = a["target"]
    score = score if score is not None else {"effective": 0.95, "ineffective": 0.1, "inconclusive": 0.6}[verdict]
    recovered = a["finished_at"] + timedelta(seconds=recovered_after_s) if recovered_after_s is not None else None
    await conn.execute(
        """INSERT INTO assessments (action_id, incident_id, workflow_id, action, target, target_key, target_kind,
                                    signature, alertname, status, verdict, score, action_at, due_at, expires_at,
                                    assessed_at, recovered_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'done', $10, $11, $12, $12, $12, $12, $13)""",
        action_id, a["incident_id"], a["workflow_id"], a["action"], target,
        f"{target.get('namespace') or '_cluster'}:{target['kind']}:{target['name']}", a["ikind"], a["signature"],
        a["signals"][0], verdict, score, a["finished_at"], recovered)
    await conn.execute("INSERT INTO mining_inbox SELECT id FROM assessments WHERE action_id = $1", action_id)


async def connect(dsn: str) -> Database:
    return await Database.connect(StorageConfig(dsn=dsn, pool_max_size=6))


OOM_FACTS = {"pods.oom_killed": True, "pods.crashlooping": True, "pods.restarts": 7, "traits.single_replica": False}
