"""Incidents: one open incident per target workload; alerts join it (dedup, storm collapse)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.models.resource import ResourceRef
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
    cluster: str | None = None,
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
                                   first_seen, last_seen, firing_alerts, occurrence_count, cluster)
            VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, $9, $10, $11, $12, $12, 0, $13, $14)
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
        classification.priority, classification.model_dump(), seen_at, count, cluster,
    )
    if row["opened"]:
        metrics.incident_transition("new", cluster)
    metrics.alert_deduplicated("incident", count - (1 if row["opened"] else 0))
    return row["id"], row["opened"]


class IncidentSubject(BaseModel):
    """What an incident is about: its target workload and the alert names it has seen."""

    model_config = ConfigDict(frozen=True)

    id: int
    target: ResourceRef
    signals: list[str]
    cluster: str | None = None  # None: an incident from before the fleet (the home cluster)


async def subject(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> IncidentSubject | None:
    row = await conn.fetchrow(
        "SELECT id, target_kind, target_name, target_namespace, signals, cluster FROM incidents WHERE id = $1",
        incident_id)
    if row is None:
        return None
    return IncidentSubject(id=row["id"], signals=list(row["signals"] or []), cluster=row["cluster"],
                           target=ResourceRef(kind=row["target_kind"], name=row["target_name"],
                                              namespace=row["target_namespace"]))


async def cluster_of(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int | None) -> str | None:
    """The incident's cluster (None: unknown incident, or from before the fleet): for metric labels."""
    if incident_id is None:
        return None
    return await conn.fetchval("SELECT cluster FROM incidents WHERE id = $1", incident_id)


async def lock(conn: asyncpg.Connection, incident_id: int) -> None:
    """Hold the incident's row lock for the rest of the caller's transaction (serializes writers per incident)."""
    await conn.execute("SELECT id FROM incidents WHERE id = $1 FOR UPDATE", incident_id)


async def open_signals(conn: asyncpg.Connection, fingerprint: str) -> list[str] | None:
    """The alert names of the open incident on ``fingerprint``; None when there is no open incident."""
    signals = await conn.fetchval("SELECT signals FROM incidents WHERE fingerprint = $1 AND status = 'open'",
                                  fingerprint)
    return None if signals is None else list(signals)


async def latest_signals_on(conn: asyncpg.Connection | asyncpg.Pool, target: ResourceRef) -> list[str]:
    """The alert names of the latest incident on ``target`` (none: an empty list)."""
    signals = await conn.fetchval(
        """SELECT signals FROM incidents WHERE target_kind = $1 AND target_name = $2
               AND target_namespace IS NOT DISTINCT FROM $3 ORDER BY id DESC LIMIT 1""",
        target.kind, target.name, target.namespace,
    )
    return list(signals or [])


async def open_incident_for(conn: asyncpg.Connection, fingerprint: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM incidents WHERE fingerprint = $1 AND status = 'open' FOR UPDATE", fingerprint
    )


async def latest_incident_for(conn: asyncpg.Connection, fingerprint: str) -> int | None:
    return await conn.fetchval(
        "SELECT id FROM incidents WHERE fingerprint = $1 ORDER BY id DESC LIMIT 1", fingerprint
    )


# When an alert's state happened, for choosing its latest state: the sender's startsAt, but never later than our
# receipt of it. A sender's clock (or a forged startsAt, up to the day ahead that validation allows) cannot make
# one state outrank every state received after it; at equal times a resolution ends its episode.
EFFECTIVE_START = "LEAST(starts_at, received_at)"
LATEST_ORDER = f"{EFFECTIVE_START} DESC, (status = 'resolved') DESC, id DESC"

_LATEST = """SELECT DISTINCT ON (am_fingerprint) status FROM alerts
               WHERE incident_id = $1 AND am_fingerprint = ANY($2::text[]) {extra}
               ORDER BY am_fingerprint, """ + LATEST_ORDER


async def refresh_firing(conn: asyncpg.Connection, incident_id: int, fingerprints: Sequence[str],
                         batch_ids: Sequence[int]) -> int:
    """Update the count of the incident's alerts whose latest event is firing after a batch added
    ``batch_ids`` (alert fingerprints ``fingerprints``); resolve the incident at zero. Returns the count.

    Only the touched fingerprints are looked at — before and with the batch — so the cost follows the
    batch, not the incident's history. The caller holds the incident's row lock, so counts cannot race.
    """
    delta = await conn.fetchval(
        f"""SELECT (SELECT count(*) FROM ({_LATEST.format(extra="")}) a WHERE status = 'firing')
                 - (SELECT count(*) FROM ({_LATEST.format(extra="AND NOT (id = ANY($3::bigint[]))")}) b
                    WHERE status = 'firing')""",
        incident_id, list(fingerprints), list(batch_ids),
    )
    return await conn.fetchval(
        """UPDATE incidents SET firing_alerts = GREATEST(firing_alerts + $2, 0), updated_at = now(),
                                status = CASE WHEN firing_alerts + $2 <= 0 AND status = 'open' THEN 'resolved'
                                              ELSE status END,
                                resolved_at = CASE WHEN firing_alerts + $2 <= 0 AND status = 'open' THEN now()
                                                   ELSE resolved_at END
           WHERE id = $1 RETURNING firing_alerts""",
        incident_id, delta,
    )


async def set_phase(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, phase: str) -> None:
    cluster = await conn.fetchval("UPDATE incidents SET phase = $2, updated_at = now() WHERE id = $1 RETURNING cluster",
                                  incident_id, phase)
    metrics.incident_transition(phase, cluster)


async def open_by_phase(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    """How many open incidents are in each phase."""
    rows = await conn.fetch("SELECT phase, count(*) AS n FROM incidents WHERE status = 'open' GROUP BY phase")
    return {r["phase"]: r["n"] for r in rows}
