"""Context API: what is known about a resource — its live state, related objects, traits and history.

Served at ``GET /api/v1/context`` (through the gateway) for the analysis and for external agents.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve

from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.context.provider import ContextProvider
from kubernaut.models.resource import ResourceRef
from kubernaut.serving import ReplicaBase

logger = logging.getLogger(__name__)


@serve.deployment(name="context")
class ContextService(ReplicaBase):
    service_name = "context"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._cluster: ClusterConnection = await asyncio.to_thread(connect, config.kubernetes)
        self._provider = ContextProvider(config, self._cluster, self.db.pool)

    async def get_context(self, target: ResourceRef, history_limit: int = 10) -> dict[str, Any]:
        """The ResourceContext of ``target`` as JSON; sections not gathered in time are named in ``missing``."""
        signals = await self.db.pool.fetchval(
            """SELECT signals FROM incidents WHERE target_kind = $1 AND target_name = $2
                   AND target_namespace IS NOT DISTINCT FROM $3 ORDER BY id DESC LIMIT 1""",
            target.kind, target.name, target.namespace,
        )
        ctx = await self._provider.context_for(target, signals=list(signals or []), history_limit=history_limit)
        body = ctx.model_dump(mode="json")
        body["cluster"] = {"available": self._cluster.available, "source": self._cluster.source,
                           "reason": self._cluster.reason}
        return body
