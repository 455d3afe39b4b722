"""What the database remembers about a target: its past incidents with their latest decision, the actions run
on it, and incidents of other targets of the same kind that share an alert name (label overlap, not the
embedding search of kubernaut/storage/incident_embeddings.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.models.resource import ResourceRef


class PastIncident(BaseModel):
    """An incident with the latest analysis's decision and the latest action's status."""

    model_config = ConfigDict(frozen=True)

    id: int
    status: str
    phase: str
    signals: list[str]
    first_seen: datetime | None
    last_seen: datetime | None
    occurrence_count: int
    target_kind: str
    target_name: str
    target_namespace: str | None
    action: str | None
    engine: str | None
    confidence: float | None
    action_status: str | None


class PastAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_id: int | None
    action: str
    status: str
    dry_run: bool
    error: str | None
    created_at: datetime | None
    finished_at: datetime | None


_INCIDENTS = """
SELECT i.id, i.status, i.phase, coalesce(i.signals, '{}') AS signals, i.first_seen, i.last_seen, i.occurrence_count,
       i.target_kind, i.target_name, i.target_namespace,
       a.action, a.engine, a.confidence, x.status AS action_status
FROM incidents i
LEFT JOIN LATERAL (SELECT action, engine, confidence FROM analyses WHERE incident_id = i.id
                   ORDER BY id DESC LIMIT 1) a ON true
LEFT JOIN LATERAL (SELECT status FROM actions WHERE incident_id = i.id ORDER BY id DESC LIMIT 1) x ON true
"""


class ClusterFilter(BaseModel):
    """One cluster of a fleet: rows of ``cluster``, where a row without one (from before the fleet) is ``home``'s.
    Without a filter (one cluster) every row counts."""

    model_config = ConfigDict(frozen=True)

    cluster: str
    home: str


async def incidents_of(conn: asyncpg.Connection | asyncpg.Pool, targets: Sequence[ResourceRef], limit: int = 10,
                       exclude_incident: int | None = None, scope: ClusterFilter | None = None
                       ) -> list[PastIncident]:
    """Incidents of these targets, the latest first (of ``scope``'s cluster only, when given: a Deployment of the
    same name on another cluster is another workload)."""
    rows = await conn.fetch(
        _INCIDENTS + """WHERE (coalesce(i.target_namespace, '_cluster') || ':' || i.target_kind || ':' || i.target_name)
                             = ANY($1::text[])
                          AND ($3::bigint IS NULL OR i.id <> $3)
                          AND ($4::text IS NULL OR coalesce(i.cluster, $5) = $4)
                        ORDER BY i.id DESC LIMIT $2""",
        [t.key for t in targets], limit, exclude_incident,
        scope.cluster if scope else None, scope.home if scope else None,
    )
    return [PastIncident.model_validate(dict(r)) for r in rows]


async def actions_on(conn: asyncpg.Connection | asyncpg.Pool, targets: Sequence[ResourceRef],
                     limit: int = 10, scope: ClusterFilter | None = None) -> list[PastAction]:
    """Actions run on these targets, the latest first (on ``scope``'s cluster only, when given)."""
    rows = await conn.fetch(
        """SELECT incident_id, action, status, dry_run, error, created_at, finished_at FROM actions
           WHERE (coalesce(target->>'namespace', '_cluster') || ':' || (target->>'kind') || ':' || (target->>'name'))
                 = ANY($1::text[])
             AND ($3::text IS NULL OR coalesce(cluster, $4) = $3)
           ORDER BY id DESC LIMIT $2""",
        [t.key for t in targets], limit, scope.cluster if scope else None, scope.home if scope else None,
    )
    return [PastAction.model_validate(dict(r)) for r in rows]


async def incidents_sharing_alerts(conn: asyncpg.Connection | asyncpg.Pool, target: ResourceRef,
                                   signals: Sequence[str], limit: int = 5) -> list[PastIncident]:
    """Incidents of other targets of the same kind with at least one alert name in common, those with a
    decision first."""
    rows = await conn.fetch(
        _INCIDENTS + """WHERE i.signals && $1::text[] AND i.target_kind = $2
                          AND NOT (i.target_name = $3 AND i.target_namespace IS NOT DISTINCT FROM $4)
                        ORDER BY (a.action IS NOT NULL) DESC, i.id DESC LIMIT $5""",
        list(signals), target.kind, target.name, target.namespace, limit,
    )
    return [PastIncident.model_validate(dict(r)) for r in rows]
