"""RequestRate: the per-replica webhook rate the gateway uses to stop waiting for incident ids under load."""

from __future__ import annotations

import pytest

from kubernaut.gateway import load
from kubernaut.gateway.load import RequestRate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(load.time, "monotonic", fake)
    return fake


def test_rate_follows_the_load_and_falls_back_when_quiet(clock: Clock) -> None:
    rate = RequestRate()
    assert rate.per_second() == 0.0
    for _ in range(100):  # 100 webhooks/s for a second and a half
        clock.now += 0.015
        rate.tick()
    assert 60 <= rate.per_second() <= 100
    clock.now += 30  # quiet for half a minute
    rate.tick()
    assert rate.per_second() < 2.0


def test_a_few_webhooks_are_not_load(clock: Clock) -> None:
    rate = RequestRate()
    for _ in range(3):
        clock.now += 0.3
        rate.tick()
    assert rate.per_second() <= 5
