"""One call for the whole context of a target: live cluster state and database history, concurrently.

Used by the Context API deployment and in-process by the analysis (which needs the same facts within
its own latency budget, without another hop).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import asyncpg

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.client import ClusterConnection
from kubernaut.cluster.redaction import redactor
from kubernaut.config.settings import KubernautConfig
from kubernaut.context import history
from kubernaut.context.cluster_reader import KubeReader
from kubernaut.context.gather import ContextGatherer
from kubernaut.context.models import ResourceContext
from kubernaut.models.resource import ResourceRef
from kubernaut.storage.target_history import ClusterFilter

logger = logging.getLogger(__name__)


class ContextProvider:
    def __init__(self, config: KubernautConfig, cluster: ClusterConnection, pool: asyncpg.Pool | None, *,
                 api: ClusterAPI | None = None, managed_namespaces: list[str] | None = None,
                 cluster_name: str | None = None) -> None:
        """``api``: a fleet cluster's facade (its circuit included) instead of ``cluster``'s client, with that
        cluster's ``managed_namespaces``; ``cluster_name``: that cluster, whose history alone is the target's
        (None: one cluster, every row)."""
        reader = KubeReader(api or cluster.api_client, config.kubernetes.request_timeout_s) \
            if api is not None or cluster.available else None
        self._gatherer = ContextGatherer(reader, cluster.reason, time_budget_s=config.analysis.context_time_budget_s,
                                         event_limit=config.analysis.context_event_limit,
                                         managed_label=config.execution.managed_label,
                                         managed_namespaces=config.execution.managed_namespaces
                                         if managed_namespaces is None else managed_namespaces,
                                         redact=redactor(config.redaction),
                                         gitops_detect_owners=config.gitops.detect,
                                         argocd_instance_label=config.gitops.argocd_instance_label,
                                         argocd_namespaces=config.gitops.argocd_namespaces,
                                         gitops_repositories=[r.url for r in config.gitops.repositories])
        self._pool = pool
        self._history_scope = ClusterFilter(cluster=cluster_name, home=config.home_cluster) \
            if cluster_name is not None else None
        self._budget = config.analysis.context_time_budget_s

    @property
    def cluster_available(self) -> bool:
        return self._gatherer.available

    async def context_for(self, target: ResourceRef, *, signals: Sequence[str] = (),
                          exclude_incident: int | None = None, history_limit: int = 10,
                          budget_s: float | None = None) -> ResourceContext:
        started = time.monotonic()
        budget = budget_s or self._budget
        ctx = await self._gatherer.gather(target, budget)
        if self._pool is not None:
            await self._add_history(ctx, signals, exclude_incident, history_limit,
                                    max(budget - (time.monotonic() - started), 0.5))
        ctx.elapsed_ms = (time.monotonic() - started) * 1000
        return ctx

    async def _add_history(self, ctx: ResourceContext, signals: Sequence[str], exclude_incident: int | None,
                           limit: int, budget_s: float) -> None:
        # History is keyed on the workload as well as the alert's own target: a pod alert and a
        # deployment alert about one workload share their past.
        targets = [ctx.target] + ([ctx.workload_ref] if ctx.workload_ref and ctx.workload_ref != ctx.target else [])
        assert self._pool is not None
        try:
            incidents, actions, similar = await asyncio.wait_for(asyncio.gather(
                history.incidents_of(self._pool, targets, limit, exclude_incident, self._history_scope),
                history.actions_on(self._pool, targets, limit, self._history_scope),
                history.incidents_sharing_alerts(self._pool, ctx.workload_ref or ctx.target, signals),
            ), timeout=budget_s)
        except asyncio.TimeoutError:
            ctx.missing.append("history: time budget exhausted")
            return
        except (asyncpg.PostgresError, OSError) as exc:
            ctx.missing.append(f"history: {type(exc).__name__}")
            logger.warning("context history failed: %s", exc)
            return
        ctx.history, ctx.actions, ctx.similar = incidents, actions, similar
