"""Effectiveness Monitor: how well executed actions worked. Dry-run actions are never scored."""

from __future__ import annotations

from typing import Any

from ray import serve

from kubernaut.config.settings import KubernautConfig
from kubernaut.serving import ReplicaBase


@serve.deployment(name="effectiveness")
class EffectivenessMonitor(ReplicaBase):
    service_name = "effectiveness"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)

    async def summary(self) -> dict[str, Any]:
        row = await self.db.pool.fetchrow(
            """SELECT count(*) FILTER (WHERE NOT dry_run AND status = 'succeeded') AS executed,
                      count(*) FILTER (WHERE dry_run) AS simulated
               FROM actions"""
        )
        return {"executed_actions": row["executed"], "simulated_actions": row["simulated"],
                "note": "simulated (dry-run) actions changed nothing and are not scored"}
