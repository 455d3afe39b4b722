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
from kubernaut.cluster.fleet import Fleet, UnknownCluster
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
        # A fleet: each cluster's live state through its own client (its circuit and managed namespaces).
        self._fleet: Fleet | None = None
        self._providers: dict[str, ContextProvider] = {}
        self._fleet_watch: asyncio.Task[None] | None = None
        if config.fleet.clusters:
            self._fleet = fleet = await asyncio.to_thread(Fleet.build, config, read_retries=0)
            self._providers = {name: ContextProvider(config, member.connection, self.db.pool, api=member.api,
                                                     managed_namespaces=member.execution.managed_namespaces,
                                                     cluster_name=name)
                               for name, member in fleet.members.items()}
            self._fleet_watch = asyncio.get_running_loop().create_task(fleet.watch())

    async def get_context(self, target: ResourceRef, history_limit: int = 10,
                          second_opinion: bool = False, cluster: str | None = None) -> dict[str, Any]:
        """The ResourceContext of ``target`` as JSON; sections not gathered in time are named in ``missing``.

        ``second_opinion``: also ask HolmesGPT (when configured; up to ``holmes.timeout_s`` more).
        ``cluster``: which cluster of the fleet (None: the home cluster); one that is not configured raises
        ``UnknownCluster`` (never read elsewhere).
        """
        provider, info = self._cluster_of(cluster)
        signals = await incidents.latest_signals_on(self.db.pool, target)
        ctx = await provider.context_for(target, signals=signals, history_limit=history_limit)
        opinion = await self._second_opinion(ctx, signals) if second_opinion else None
        return context_body(ctx, info, opinion)

    def _cluster_of(self, cluster: str | None) -> tuple[ContextProvider, dict[str, Any]]:
        if self._fleet is None:
            if cluster not in (None, self.config.cluster_name):
                raise UnknownCluster(f"cluster {cluster!r} is not configured (cluster_name: "
                                     f"{self.config.cluster_name!r})")
            return self._provider, self._cluster_info()
        member = self._fleet.member(cluster)  # UnknownCluster for a name not in fleet.clusters
        return self._providers[member.name], {"name": member.name, "available": member.api is not None,
                                              "source": member.connection.source,
                                              "reason": member.connection.reason}

    async def _second_opinion(self, ctx: ResourceContext, signals: list[str]) -> dict[str, Any]:
        if self._holmes is None:
            return not_configured()
        opinion = await self._holmes.second_opinion(ctx.target, signals, holmes_summary(ctx))
        if not opinion.available:
            logger.info("HolmesGPT second opinion on %s unavailable: %s", ctx.target, opinion.error)
        return opinion.model_dump(mode="json")

    def _cluster_info(self) -> dict[str, Any]:
        return {"name": self.config.cluster_name, "available": self._cluster.available, "source": self._cluster.source,
                "reason": self._cluster.reason}

    async def __del__(self) -> None:
        if self._fleet_watch is not None:
            self._fleet_watch.cancel()
        await super().__del__()
