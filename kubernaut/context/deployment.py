"""Context API: what is known about a resource — its live state, related objects, traits and history.

Served at ``GET /api/v1/context`` (through the gateway) for the analysis and for external agents;
``second_opinion=True`` adds what an optional HolmesGPT server says (``holmes.url``), as untrusted text.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve

from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.context.holmes import HolmesClient, SecondOpinion, holmes_summary, not_configured
from kubernaut.context.models import ResourceContext
from kubernaut.context.provider import ContextProvider
from kubernaut.models.resource import ResourceRef
from kubernaut.serving import ReplicaBase
from kubernaut.storage import incidents

logger = logging.getLogger(__name__)


def context_body(ctx: ResourceContext, cluster: dict[str, Any],
                 second_opinion: SecondOpinion | dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON answer of the Context API; ``second_opinion`` only when it was asked for."""
    body = ctx.model_dump(mode="json")
    body["cluster"] = cluster
    if second_opinion is not None:
        body["second_opinion"] = (second_opinion.model_dump(mode="json")
                                  if isinstance(second_opinion, SecondOpinion) else second_opinion)
    return body


@serve.deployment(name="context")
class ContextService(ReplicaBase):
    service_name = "context"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._cluster: ClusterConnection = await asyncio.to_thread(connect, config.kubernetes)
        self._provider = ContextProvider(config, self._cluster, self.db.pool)
        self._holmes = HolmesClient(config.holmes, config.cluster_name) if config.holmes.enabled else None

    async def get_context(self, target: ResourceRef, history_limit: int = 10,
                          second_opinion: bool = False) -> dict[str, Any]:
        """The ResourceContext of ``target`` as JSON; sections not gathered in time are named in ``missing``.

        ``second_opinion``: also ask HolmesGPT (when configured; up to ``holmes.timeout_s`` more).
        """
        signals = await incidents.latest_signals_on(self.db.pool, target)
        ctx = await self._provider.context_for(target, signals=signals, history_limit=history_limit)
        opinion = await self._second_opinion(ctx, signals) if second_opinion else None
        return context_body(ctx, self._cluster_info(), opinion)

    async def _second_opinion(self, ctx: ResourceContext, signals: list[str]) -> dict[str, Any]:
        if self._holmes is None:
            return not_configured()
        opinion = await self._holmes.second_opinion(ctx.target, signals, holmes_summary(ctx))
        if not opinion.available:
            logger.info("HolmesGPT second opinion on %s unavailable: %s", ctx.target, opinion.error)
        return opinion.model_dump(mode="json")

    def _cluster_info(self) -> dict[str, Any]:
        return {"available": self._cluster.available, "source": self._cluster.source, "reason": self._cluster.reason}
