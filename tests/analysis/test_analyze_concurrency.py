"""POST /api/v1/analyze runs one analysis per target: a body naming many targets must not start them all at
once (each may be an LLM call), but at most ``concurrency`` at a time, and still answer every one."""

from __future__ import annotations

import asyncio
from typing import Any

from kubernaut.analysis.dry import analyze_webhook
from kubernaut.processing.owners import OwnerResolver


class CountingAnalyzer:
    """Stands in for the LLM-backed Analyzer only to observe how many analyses run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def analyze(self, signals: list[Any], target: Any) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        return str(target)


async def test_analyses_of_many_targets_run_through_a_bounded_gate() -> None:
    body = {"version": "4", "status": "firing", "receiver": "r", "alerts": [
        {"labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "deployment": f"web-{i}"},
         "startsAt": "2026-11-26T04:00:00Z"} for i in range(50)]}
    analyzer = CountingAnalyzer()
    results = await analyze_webhook(analyzer, OwnerResolver(None, "test", ttl_s=1, timeout_s=1),  # type: ignore[arg-type]
                                    body, concurrency=4)
    assert len(results) == 50 and analyzer.peak == 4
    default = CountingAnalyzer()
    await analyze_webhook(default, OwnerResolver(None, "test", ttl_s=1, timeout_s=1), body)  # type: ignore[arg-type]
    assert 1 <= default.peak <= 8
