"""Incidents: one open incident per target workload; alerts join it (dedup, storm collapse)."""

from __future__ import annotations

from typing import Any

import asyncpg

from kubernaut.models.signal import Classification, TargetResolution
from kubernaut.observability import metrics

_SEVERITY_ORDER = "ARRAY['unknown','info','warning','high','critical']"
_PRIORITY_ORDER = "ARRAY['P3','P2','P1','P0']"


async def join_or_open(
    conn: asyncpg.Connection,
    resolution: TargetResolution,
    classification: Classification,
    alertnames: str | list[str],
    seen_at: Any,
    count: int = 1,
) -> tuple[int, bool]:
    """Add ``count`` firing signals to the open incident of their workload, or open one. Returns (id, opened).

    The partial unique index makes this safe under concurrency: two replicas racing on the same
    workload end up in the same row.
    """
    names = [alertnames] if isinstance(alertnames, str) else list(alertnames)
    target = resolution.target
    row = await conn.fetchrow(
        f"""INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source,
                                   target_chain, signals, severity, environment, priority, classification,
                                   first_seen, last_seen, firing_alerts, occurrence_count)
            VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11, $12, $12, 1, $13)
            ON CONFLICT (fingerprint) WHERE status = 'open' DO UPDATE SET
                occurrence_count = incidents.occurrence_count + $13,
                last_seen = GREATEST(incidents.last_seen, EXCLUDED.last_seen),
                signals = incidents.signals
                          || ARRAY(SELECT n FROM unnest($7::text[]) n WHERE n <> ALL(incidents.signals)),
                severity = CASE WHEN array_position({_SEVERITY_ORDER}, EXCLUDED.severity)
                                   > array_position({_SEVERITY_ORDER}, incidents.severity)
                               THEN EXCLUDED.severity ELSE incidents.severity END,
                priority = CASE WHEN array_position({_PRIORITY_ORDER}, EXCLUDED.priority)
                                   > array_position({_PRIORITY_ORDER}, incidents.priority)
                               THEN EXCLUDED.priority ELSE incidents.priority END,
                updated_at = now()
            RETURNING id, (xmax = 0) AS opened""",
        resolution.fingerprint, target.kind, target.name, target.namespace, resolution.source,
        resolution.chain, names, classification.severity, classification.environment,
        classification.priority, classification.model_dump(), seen_at, count,
    )
    if row["opened"]:
        metrics.incident_transition("new")
    metrics.alert_deduplicated("incident", count - (1 if row["opened"] else 0))
    return row["id"], row["opened"]


async def open_incident_for(conn: asyncpg.Connection, fingerprint: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM incidents WHERE fingerprint = $1 AND status = 'open' FOR UPDATE", fingerprint
    )


async def latest_incident_for(conn: asyncpg.Connection, fingerprint: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM incidents WHERE fingerprint = $1 ORDER BY id DESC LIMIT 1", fingerprint
    )


async def refresh_firing(conn: asyncpg.Connection, incident_id: int) -> int:
    """Count alerts of the incident whose latest event is firing; resolve the incident at zero."""
    firing = await conn.fetchval(
        """SELECT count(*) FROM (
               SELECT DISTINCT ON (am_fingerprint) status FROM alerts
               WHERE incident_id = $1 ORDER BY am_fingerprint, starts_at DESC,
                        (status = 'resolved') DESC, id DESC) latest
           WHERE status = 'firing'""",
        incident_id,
    )
    if firing == 0:
        await conn.execute(
            """UPDATE incidents SET firing_alerts = 0, status = 'resolved', resolved_at = now(), updated_at = now()
               WHERE id = $1 AND status = 'open'""",
            incident_id,
        )
    else:
        await conn.execute(
            "UPDATE incidents SET firing_alerts = $2, updated_at = now() WHERE id = $1", incident_id, firing
        )
    return firing


async def set_phase(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, phase: str) -> None:
    metrics.incident_transition(phase)
    await conn.execute("UPDATE incidents SET phase = $2, updated_at = now() WHERE id = $1", incident_id, phase)
