"""Effectiveness Monitor: how well executed actions worked. Dry-run actions are never scored.

The work is the durable ``assess`` job (see :mod:`kubernaut.effectiveness.monitor`); this deployment
claims those jobs, runs a periodic safety-net sweep, and answers reads for the orchestrator and the API.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve

from kubernaut.cluster.client import connect
from kubernaut.cluster.fleet import Fleet
from kubernaut.config.settings import KubernautConfig
from kubernaut.effectiveness.monitor import Assessor, get_assessment, summary
from kubernaut.effectiveness.target_reader import TargetReader
from kubernaut.models.jobs import JobKind
from kubernaut.serving import ReplicaBase

logger = logging.getLogger(__name__)


@serve.deployment(name="effectiveness")
class EffectivenessMonitor(ReplicaBase):
    service_name = "effectiveness"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        cluster = await asyncio.to_thread(connect, config.kubernetes)
        if not cluster.available:
            logger.warning("no Kubernetes credentials (%s): health and drift are not measured", cluster.reason)
        reader = TargetReader(cluster.api_client, config.effectiveness.kube_timeout_s) if cluster.available else None
        self.assessor = Assessor(self.db.pool, config, reader)
        if config.fleet.clusters:  # a fleet: each action is judged on its own cluster
            fleet = await asyncio.to_thread(Fleet.build, config, timeout_s=config.effectiveness.kube_timeout_s)
            self.assessor.readers = {name: TargetReader(m.api, config.effectiveness.kube_timeout_s) if m.api else None
                                     for name, m in fleet.members.items()}
            self._fleet_watch = asyncio.get_running_loop().create_task(fleet.watch())  # rotated credentials
        self._start_worker({JobKind.ASSESS: self.assessor.handle})
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            try:
                if await self.assessor.sweep() and self.worker is not None:
                    self.worker.wake()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("assessment sweep failed")
            await asyncio.sleep(self.config.effectiveness.sweep_interval_s)

    async def assessment(self, action_id: int) -> dict[str, Any] | None:
        """For the orchestrator's verify step: pending/done/expired/not_applicable, or None (not created yet)."""
        return await get_assessment(self.db.pool, action_id)

    async def summary(self) -> dict[str, Any]:
        return await summary(self.db.pool)

    async def __del__(self) -> None:
        self._sweeper.cancel()
        await super().__del__()
