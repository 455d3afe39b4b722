"""Waking consumers: a hint that work is waiting in the database (their poll finds it anyway, later)."""

from __future__ import annotations

import asyncio
import time

from ray.serve.handle import DeploymentHandle

from kubernaut.serving import wake

_INTERVAL_S = 0.1


class DebouncedWake:
    """Under load one wake-up per 100 ms is plenty (the processor drains everything unprocessed), but the
    last webhooks of a burst must not wait for the sweeper's slow poll: a skipped wake-up is sent late."""

    def __init__(self, handle: DeploymentHandle, interval_s: float = _INTERVAL_S) -> None:
        self._handle = handle
        self._interval_s = interval_s
        self._last = 0.0
        self._scheduled = False

    def __call__(self) -> None:
        since = time.monotonic() - self._last
        if since >= self._interval_s:
            self._last = time.monotonic()
            wake(self._handle)
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(self._interval_s - since, self._trailing)

    def _trailing(self) -> None:
        self._scheduled = False
        self._last = time.monotonic()
        wake(self._handle)

