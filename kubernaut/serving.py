"""What every Kubernaut deployment replica shares: its database pool, its job worker, its health."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import KubernautConfig
from kubernaut.job_worker import JobWorker
from kubernaut.models.jobs import JobKind
from kubernaut.observability.logs import configure_logging
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Job, RetryPolicy, replica_identity

logger = logging.getLogger(__name__)


class ReplicaBase:
    """Base of the internal deployments: no state lives only here, everything is in PostgreSQL."""

    service_name = "service"

    async def _setup(self, config: KubernautConfig) -> None:
        configure_logging(config.log_level)
        self.config = config
        self.db = await Database.connect(config.storage, application_name=f"kubernaut-{self.service_name}")
        self.worker: JobWorker | None = None

    def _start_worker(
        self,
        handlers: Mapping[JobKind, Callable[[Job], Awaitable[None]]],
        on_give_up: Callable[[Job, str], Awaitable[None]] | None = None,
        batch_size: int | None = None,
    ) -> None:
        """Claim ``handlers``' kinds: each must be declared as consumed by this deployment (kubernaut.models.jobs),
        so a job never waits for a consumer that does not claim it."""
        foreign = [kind.value for kind in handlers if kind.spec.consumer != self.service_name]
        if foreign:
            raise RuntimeError(f"{self.service_name} does not consume job kinds {foreign} (kubernaut.models.jobs)")
        work = self.config.work
        self.worker = JobWorker(
            self.db.pool, handlers, owner=replica_identity(self.service_name),
            poll_interval_s=work.poll_interval_s, lease_s=work.lease_s, max_attempts=work.max_attempts,
            batch_size=batch_size or work.batch_size, on_give_up=on_give_up,
            policies={kind: RetryPolicy(*work.retry_policy(kind)) for kind in handlers},
            heartbeat_s=work.lease_s * work.heartbeat_fraction,
        )
        self.worker.start()

    async def wake(self) -> None:
        """Wake the job worker: there is new work in the database (an optimization, never required)."""
        if self.worker is not None:
            self.worker.wake()

    async def check_health(self) -> None:
        # Serve restarts a replica whose health check raises.
        if not await self.db.ping():
            raise RuntimeError(f"{self.service_name}: database unreachable")

    async def __del__(self) -> None:
        if getattr(self, "worker", None) is not None:
            await self.worker.stop()


def wake(handle: DeploymentHandle | None) -> None:
    """Fire-and-forget wake-up of a downstream deployment; failures only cost latency."""
    if handle is None:
        return
    try:
        handle.wake.remote()
    except Exception:
        logger.debug("wake-up failed; the downstream poll loop will pick the work up", exc_info=True)
