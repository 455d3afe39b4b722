"""Circuit breaker for a remote provider (the LLM, HolmesGPT): stop calling one that keeps failing, try again later.

Only provider failures count (connection refused, timeouts, 5xx, 429); a provider that answers
nonsense is up, and the answer validation deals with it. State is per replica and in memory on
purpose: it describes this replica's recent experience of the provider, not a fact to persist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class BreakerState(str, Enum):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # calls are refused until reset_s has passed
    HALF_OPEN = "half_open"  # one trial call is let through


@dataclass
class CircuitBreaker:
    failure_threshold: int = 3
    reset_s: float = 60.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    state: BreakerState = BreakerState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    last_error: str | None = None
    opened_count: int = 0
    _trial_in_flight: bool = False

    def allow(self) -> bool:
        """Whether a call may be made now (in half-open state, only one at a time)."""
        if self.state is BreakerState.OPEN:
            if self.opened_at is not None and self.clock() - self.opened_at >= self.reset_s:
                self.state = BreakerState.HALF_OPEN
            else:
                return False
        if self.state is BreakerState.HALF_OPEN:
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at = None
        self._trial_in_flight = False

    def record_failure(self, error: str) -> None:
        self.last_error = error
        self.consecutive_failures += 1
        trial_failed = self.state is BreakerState.HALF_OPEN
        self._trial_in_flight = False
        if trial_failed or self.consecutive_failures >= self.failure_threshold:
            if self.state is not BreakerState.OPEN:
                self.opened_count += 1
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()

    def release(self) -> None:
        """A half-open trial ended without a verdict on the provider (e.g. our own budget ran out first)."""
        self._trial_in_flight = False

    def retry_in_s(self) -> float | None:
        if self.state is not BreakerState.OPEN or self.opened_at is None:
            return None
        return max(0.0, self.reset_s - (self.clock() - self.opened_at))

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "failure_threshold": self.failure_threshold,
            "retry_in_s": self.retry_in_s(),
            "opened_count": self.opened_count,
            "last_error": self.last_error,
        }
