"""Whether a committed webhook waits for its incident ids: a courtesy when the processor is quick, never a cost.

The answer is 2xx once the alerts are committed; waiting for the processor only adds incident ids to it. It is
worth it while this replica is quiet (few webhooks in flight, a low rate); under load the gateway wakes the
processor instead and answers at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import GatewayConfig
from kubernaut.gateway.load import RequestRate

logger = logging.getLogger("kubernaut.gateway")


class ProcessingWait:
    def __init__(self, config: GatewayConfig, processor: DeploymentHandle, rate: RequestRate,
                 wake_processor: Callable[[], None]) -> None:
        self._config = config
        self._processor = processor
        self._rate = rate
        self._wake_processor = wake_processor
        self._inflight = 0

    def _worth_waiting(self) -> bool:
        cfg = self._config
        return (cfg.process_wait_s > 0 and self._inflight < cfg.process_wait_max_inflight
                and self._rate.per_second() <= cfg.process_wait_max_rate)

    async def incidents_of(self, pending: Sequence[int], request_id: str) -> dict[int, int | None]:
        """Alert id → incident id for the ``pending`` alerts the processor handled in time (maybe none)."""
        if not pending:
            return {}
        if not self._worth_waiting():
            self._wake_processor()
            return {}
        self._inflight += 1
        try:
            return await asyncio.wait_for(self._processor.process.remote(list(pending)),
                                          timeout=self._config.process_wait_s)
        except Exception as exc:  # the processor's sweeper finishes the job
            logger.warning("request_id=%s processing deferred: %s", request_id, type(exc).__name__)
            return {}
        finally:
            self._inflight -= 1
