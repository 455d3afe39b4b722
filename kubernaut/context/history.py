"""What the database remembers about a target: past incidents, actions with outcomes, similar incidents.

Similar incidents are matched on structured facts (same alert names, same target kind), not on
free text: the field notes report that keyword matching made results non-deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from kubernaut.context.models import ActionRecord, IncidentRecord
from kubernaut.models.resource import ResourceRef

_INCIDENTS = """
SELECT i.id, i.status, i.phase, i.signals, i.first_seen, i.last_seen, i.occurrence_count,
       i.target_kind, i.target_name, i.target_namespace,
       a.action, a.engine, a.confidence, x.status AS action_status
FROM incidents i
LEFT JOIN LATERAL (SELECT action, engine, confidence FROM analyses WHERE incident_id = i.id
                   ORDER BY id DESC LIMIT 1) a ON true
LEFT JOIN LATERAL (SELECT status FROM actions WHERE incident_id = i.id ORDER BY id DESC LIMIT 1) x ON true
"""


def _incident(row: asyncpg.Record) -> IncidentRecord:
    return IncidentRecord(
        incident_id=row["id"], status=row["status"], phase=row["phase"], signals=list(row["signals"] or []),
        target=ResourceRef(kind=row["target_kind"], name=row["target_name"], namespace=row["target_namespace"]),
        first_seen=row["first_seen"], last_seen=row["last_seen"], occurrence_count=row["occurrence_count"],
        action=row["action"], engine=row["engine"], confidence=row["confidence"], action_status=row["action_status"],
    )


async def incidents_of(pool: asyncpg.Pool, targets: Sequence[ResourceRef], limit: int = 10,
                       exclude_incident: int | None = None) -> list[IncidentRecord]:
    keys = [t.key for t in targets]
    rows = await pool.fetch(
        _INCIDENTS + """WHERE (coalesce(i.target_namespace, '_cluster') || ':' || i.target_kind || ':' || i.target_name)
                             = ANY($1::text[])
                          AND ($3::bigint IS NULL OR i.id <> $3)
                        ORDER BY i.id DESC LIMIT $2""",
        keys, limit, exclude_incident,
    )
    return [_incident(r) for r in rows]


async def actions_on(pool: asyncpg.Pool, targets: Sequence[ResourceRef], limit: int = 10) -> list[ActionRecord]:
    keys = [t.key for t in targets]
    rows = await pool.fetch(
        """SELECT incident_id, action, status, dry_run, error, created_at, finished_at FROM actions
           WHERE (coalesce(target->>'namespace', '_cluster') || ':' || (target->>'kind') || ':' || (target->>'name'))
                 = ANY($1::text[])
           ORDER BY id DESC LIMIT $2""",
        keys, limit,
    )
    return [ActionRecord(incident_id=r["incident_id"], action=r["action"], status=r["status"], dry_run=r["dry_run"],
                         error=(r["error"] or "")[:200] or None, created_at=r["created_at"],
                         finished_at=r["finished_at"]) for r in rows]


async def similar_incidents(pool: asyncpg.Pool, target: ResourceRef, signals: Sequence[str], limit: int = 5
                            ) -> list[IncidentRecord]:
    """Incidents of other targets of the same kind with at least one alert name in common."""
    if not signals:
        return []
    rows = await pool.fetch(
        _INCIDENTS + """WHERE i.signals && $1::text[] AND i.target_kind = $2
                          AND NOT (i.target_name = $3 AND i.target_namespace IS NOT DISTINCT FROM $4)
                        ORDER BY (a.action IS NOT NULL) DESC, i.id DESC LIMIT $5""",
        list(signals), target.kind, target.name, target.namespace, limit,
    )
    return [_incident(r) for r in rows]
