"""How busy this gateway replica is: the webhook rate that decides whether waiting for incident ids is worth it."""

from __future__ import annotations

import time


class RequestRate:
    """Webhooks per second on this replica, over the last full second (cheap enough for every request)."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._count = 0
        self._rate = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        elapsed = now - self._start
        if elapsed >= 1.0:
            # A long quiet gap counts as quiet, not as one second's worth of the old count.
            self._rate = self._count / elapsed
            self._start, self._count = now, 0
        self._count += 1

    def per_second(self) -> float:
        elapsed = time.monotonic() - self._start
        current = self._count / elapsed if elapsed >= 0.25 else 0.0
        return max(self._rate if elapsed < 2.0 else 0.0, current)
