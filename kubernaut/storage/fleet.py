"""The fleet's bookkeeping in the database: rows from before the fleet belong to the home cluster."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.storage.learning import OutcomeCounts


async def adopt_home(pool: asyncpg.Pool, home: str) -> int:
    """Name the home cluster on incidents and actions recorded before migration 0016 (cluster NULL); returns how
    many rows were adopted. Cheap once done: partial indexes hold only the NULL rows."""
    async with pool.acquire() as conn, conn.transaction():
        incidents = await conn.execute("UPDATE incidents SET cluster = $1 WHERE cluster IS NULL", home)
        actions = await conn.execute("UPDATE actions SET cluster = $1 WHERE cluster IS NULL", home)
    return int(incidents.split()[-1]) + int(actions.split()[-1])


class ClusterOutcomes(BaseModel):
    """How one action worked for one learning signature on one cluster (``cluster`` None: the whole fleet)."""

    model_config = ConfigDict(frozen=True)

    cluster: str | None
    action: str
    assessed: int
    effective: int
    ineffective: int


async def outcomes_by_cluster(conn: asyncpg.Connection | asyncpg.Pool, signature: str) -> list[ClusterOutcomes]:
    """Finished assessments of ``signature`` per cluster and action, then the fleet-wide total of each action
    (``cluster`` None): what worked for this kind of incident here, and across all clusters."""
    rows = await conn.fetch(
        """SELECT CASE WHEN GROUPING(x.cluster) = 1 THEN NULL ELSE coalesce(x.cluster, '') END AS cluster,
                  a.action, count(*) AS assessed,
                  count(*) FILTER (WHERE a.verdict = 'effective') AS effective,
                  count(*) FILTER (WHERE a.verdict = 'ineffective') AS ineffective
           FROM assessments a JOIN actions x ON x.id = a.action_id
           WHERE a.signature = $1 AND a.status IN ('done', 'expired')
           GROUP BY GROUPING SETS ((x.cluster, a.action), (a.action))
           ORDER BY a.action, GROUPING(x.cluster), x.cluster""", signature)
    return [ClusterOutcomes.model_validate(dict(r)) for r in rows]


_CLUSTER_OUTCOMES_SQL = """
SELECT a.action, count(*) AS executions,
       count(*) FILTER (WHERE a.verdict = 'effective') AS effective,
       count(*) FILTER (WHERE a.verdict = 'ineffective') AS ineffective,
       coalesce(sum(a.score), 0) AS score_sum, count(a.score) AS scored,
       coalesce(sum(extract(epoch FROM a.recovered_at - i.first_seen))
                FILTER (WHERE a.recovered_at >= i.first_seen), 0) AS recovery_s_sum,
       count(*) FILTER (WHERE a.recovered_at >= i.first_seen) AS recoveries,
       max(a.action_at) AS last_at
FROM assessments a JOIN incidents i ON i.id = a.incident_id
WHERE a.signature = $1 AND ($2::text[] IS NULL OR a.action = ANY($2)) AND a.status IN ('done', 'expired')
  AND coalesce(i.cluster, $4) = $3
GROUP BY a.action
"""


async def cluster_outcomes(conn: asyncpg.Connection | asyncpg.Pool, signature: str, actions: Sequence[str] | None,
                           cluster: str, home: str) -> dict[str, OutcomeCounts]:
    """Finished assessments of ``signature`` on incidents of one cluster, per action (an incident from before
    the fleet, cluster NULL, is the home cluster's): the counts learning weighs first in a fleet."""
    rows = await conn.fetch(_CLUSTER_OUTCOMES_SQL, signature, list(actions) if actions is not None else None,
                            cluster, home)
    return {r["action"]: OutcomeCounts.model_validate(dict(r)) for r in rows}


async def escalate_waiting(conn: asyncpg.Connection, incident_id: int) -> bool:
    """Escalate an open incident that is not escalated yet (its cluster does not answer); False if nothing changed."""
    return await conn.fetchval(
        """UPDATE incidents SET phase = 'escalated', updated_at = now()
           WHERE id = $1 AND status = 'open' AND phase IS DISTINCT FROM 'escalated' RETURNING true""",
        incident_id) is not None


async def clusters_of(conn: asyncpg.Connection | asyncpg.Pool, incident_ids: Sequence[int], home: str
                      ) -> dict[int, str]:
    """The cluster of each incident (one from before the fleet: ``home``)."""
    rows = await conn.fetch("SELECT id, coalesce(cluster, $2) AS cluster FROM incidents WHERE id = ANY($1::bigint[])",
                            list(incident_ids), home)
    return {r["id"]: r["cluster"] for r in rows}
