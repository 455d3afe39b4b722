"""Per-sender token buckets: one noisy AlertManager (or attacker) cannot starve the others.

Buckets live in the replica: a limit per replica is what protects that replica, and with N
replicas a sender gets at most N times the rate — acceptable for a flood guard, and it needs no
shared state on the hot path.
"""

from __future__ import annotations

import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, max_senders: int = 10_000) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max = max_senders
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def acquire(self, sender: str, now: float | None = None) -> float:
        """0.0 when allowed, else seconds until a request would be allowed (for Retry-After)."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(sender, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[sender] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[sender] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
        while len(self._buckets) > self._max:  # forget the least recently seen senders
            self._buckets.popitem(last=False)
        return wait
