"""K8s Executor deployment: the only component that may change a cluster.

A thin Serve shell: credentials, the database pool and the Executor (``execution.pipeline``), which
holds all the logic: every request goes through the catalog and the safety pipeline there, is
idempotent on its key, and in dry-run mode (the default) stops after the server-side dry-run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from ray import serve

from kubernaut.cluster.fleet import Fleet
from kubernaut.config.settings import KubernautConfig
from kubernaut.execution.pipeline import Executor
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.observability import metrics
from kubernaut.serving import ReplicaBase
from kubernaut.storage import execution as records

logger = logging.getLogger(__name__)


@serve.deployment(name="executor")
class K8sExecutor(ReplicaBase):
    service_name = "executor"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        # One executor per cluster of the fleet (a single-cluster config: one, keyed as before).
        self.fleet: Fleet = await asyncio.to_thread(Fleet.build, config)
        self.executors: dict[str, Executor] = {}
        for name, member in self.fleet.members.items():
            if member.api is None:
                logger.warning("cluster %s: no Kubernetes credentials (%s): dry-run plans only", name,
                               member.connection.reason)
            self.executors[name] = Executor(
                self.db, member.execution, member.api, cluster_reason=member.connection.reason,
                cluster_source=member.connection.source, redaction=config.redaction, cluster=name,
                fleet_home=self.fleet.home if self.fleet.multi else None)
        self.executor = self.executors.get(self.fleet.home) or next(iter(self.executors.values()))
        self._reload = asyncio.get_running_loop().create_task(self.fleet.watch(probe=bool(config.fleet.clusters)))

    def _for(self, cluster: str | None) -> Executor:
        name = cluster or self.fleet.home
        executor = self.executors.get(name)
        if executor is not None:
            return executor
        # Fail closed: recorded and refused, never run on another cluster.
        return Executor(self.db, self.config.execution, None, redaction=self.config.redaction, cluster=name,
                        fleet_home=self.fleet.home,
                        refuse_all=f"cluster {name!r} is not configured (fleet.clusters: {sorted(self.executors)})")

    async def status(self) -> dict[str, Any]:
        status = await self.executor.status()
        if self.fleet.multi:
            status["clusters"] = {name: {**await ex.status(), "circuit": self.fleet.members[name].circuit.snapshot()}
                                  for name, ex in self.executors.items()}
        return status

    async def catalog(self) -> list[dict[str, Any]]:
        return self.executor.catalog()

    async def execute(self, request: ActionRequest) -> ActionResult:
        started = time.perf_counter()
        result = await self._for(request.cluster).execute(request)
        outcome = {"dry_run": "succeeded", "succeeded": "succeeded", "failed": "failed", "refused": "rejected",
                   "planned": "skipped"}.get(result.status, result.status)
        metrics.action_executed(request.action, outcome, dry_run=result.dry_run,
                                seconds=time.perf_counter() - started,
                                cluster=request.cluster or self.config.home_cluster)
        return result

    async def verify(self, action_id: int) -> dict[str, Any]:
        row = await records.fetch(self.db.pool, action_id)
        return await self._for(row.cluster if row is not None else None).verify(action_id)

    async def __del__(self) -> None:
        if getattr(self, "_reload", None) is not None:
            self._reload.cancel()
        await super().__del__()
