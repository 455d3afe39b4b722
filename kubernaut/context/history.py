"""What the database remembers about a target, for the context: past incidents, actions with outcomes, and
incidents of other targets that share an alert name (kubernaut/storage/target_history.py).

Those are matched on structured facts (same alert names, same target kind), not on free text, so the
result is deterministic; the embedding search of kubernaut/intelligence/similarity.py is the other, fuzzy
notion of "similar".
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from kubernaut.context.models import ActionRecord, IncidentRecord
from kubernaut.models.resource import ResourceRef
from kubernaut.storage import target_history
from kubernaut.storage.target_history import ClusterFilter, PastIncident


def _incident(row: PastIncident) -> IncidentRecord:
    return IncidentRecord(
        incident_id=row.id, status=row.status, phase=row.phase, signals=list(row.signals),
        target=ResourceRef(kind=row.target_kind, name=row.target_name, namespace=row.target_namespace),
        first_seen=row.first_seen, last_seen=row.last_seen, occurrence_count=row.occurrence_count,
        action=row.action, engine=row.engine, confidence=row.confidence, action_status=row.action_status,
    )


async def incidents_of(pool: asyncpg.Pool, targets: Sequence[ResourceRef], limit: int = 10,
                       exclude_incident: int | None = None, scope: ClusterFilter | None = None
                       ) -> list[IncidentRecord]:
    return [_incident(r) for r in await target_history.incidents_of(pool, targets, limit, exclude_incident, scope)]


async def actions_on(pool: asyncpg.Pool, targets: Sequence[ResourceRef], limit: int = 10,
                     scope: ClusterFilter | None = None) -> list[ActionRecord]:
    return [ActionRecord(incident_id=r.incident_id, action=r.action, status=r.status, dry_run=r.dry_run,
                         error=(r.error or "")[:200] or None, created_at=r.created_at, finished_at=r.finished_at)
            for r in await target_history.actions_on(pool, targets, limit, scope)]


async def incidents_sharing_alerts(pool: asyncpg.Pool, target: ResourceRef, signals: Sequence[str], limit: int = 5
                                   ) -> list[IncidentRecord]:
    """Incidents of other targets of the same kind with at least one alert name in common."""
    if not signals:
        return []
    return [_incident(r) for r in await target_history.incidents_sharing_alerts(pool, target, signals, limit)]
