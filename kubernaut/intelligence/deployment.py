"""Intelligence: what history says about (alert signature, action) pairs."""

from __future__ import annotations

from typing import Any

from ray import serve

from kubernaut.config.settings import KubernautConfig
from kubernaut.serving import ReplicaBase


@serve.deployment(name="intelligence")
class IntelligenceService(ReplicaBase):
    service_name = "intelligence"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)

    async def action_stats(self, limit: int = 100) -> list[dict[str, Any]]:
        """Per (first alert name, target kind, action): how often chosen, and what happened."""
        rows = await self.db.pool.fetch(
            """SELECT i.signals[1] AS signature, i.target_kind, a.action,
                      count(*) AS chosen,
                      count(x.id) FILTER (WHERE x.status = 'succeeded' AND NOT x.dry_run) AS executed,
                      count(x.id) FILTER (WHERE x.dry_run) AS simulated,
                      count(x.id) FILTER (WHERE x.status IN ('failed', 'refused')) AS failed_or_refused
               FROM analyses a JOIN incidents i ON i.id = a.incident_id
               LEFT JOIN actions x ON x.incident_id = a.incident_id AND x.action = a.action
               GROUP BY 1, 2, 3 ORDER BY chosen DESC LIMIT $1""",
            limit,
        )
        return [dict(r) for r in rows]
