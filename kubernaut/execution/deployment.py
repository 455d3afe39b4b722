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

from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.execution.kube import Kube
from kubernaut.execution.pipeline import Executor
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.observability import metrics
from kubernaut.serving import ReplicaBase

logger = logging.getLogger(__name__)


@serve.deployment(name="executor")
class K8sExecutor(ReplicaBase):
    service_name = "executor"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._cluster: ClusterConnection = await asyncio.to_thread(connect, config.kubernetes)
        if not self._cluster.available:
            logger.warning("no Kubernetes credentials (%s): dry-run plans only", self._cluster.reason)
        kube = (Kube(self._cluster.api_client, timeout_s=config.kubernetes.request_timeout_s)
                if self._cluster.api_client is not None else None)
        self.executor = Executor(self.db, config.execution, kube, cluster_reason=self._cluster.reason,
                                 cluster_source=self._cluster.source, redaction=config.redaction)

    async def status(self) -> dict[str, Any]:
        return await self.executor.status()

    async def catalog(self) -> list[dict[str, Any]]:
        return self.executor.catalog()

    async def execute(self, request: ActionRequest) -> ActionResult:
        started = time.perf_counter()
        result = await self.executor.execute(request)
        outcome = {"dry_run": "succeeded", "succeeded": "succeeded", "failed": "failed", "refused": "rejected",
                   "planned": "skipped"}.get(result.status, result.status)
        metrics.action_executed(request.action, outcome, dry_run=result.dry_run,
                                seconds=time.perf_counter() - started)
        return result

    async def verify(self, action_id: int) -> dict[str, Any]:
        return await self.executor.verify(action_id)
