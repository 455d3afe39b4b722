"""Analysis without acting: an AlertManager body in, one decision per incident it would form.

Shared by ``POST /api/v1/analyze`` (the analysis deployment) and ``kubernaut eval`` (in-process), so
the evaluation measures exactly what the API answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubernaut.analysis.engine import Analyzer
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.analysis import AnalysisResult
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from kubernaut.processing.owners import OwnerResolver


async def analyze_webhook(analyzer: Analyzer, owners: OwnerResolver, payload: dict[str, Any], *,
                          concurrency: int = 8) -> list[AnalysisResult]:
    """Alerts are grouped by the workload the processor would resolve them to, then analysed concurrently,
    at most ``concurrency`` targets at a time: each may be an LLM call, and one body may name thousands."""
    webhook = WebhookPayload.model_validate(payload)
    groups: dict[str, tuple[ResourceRef, list[Signal]]] = {}
    for index, alert in enumerate(webhook.alerts):
        resolution = await owners.resolve(alert.labels)
        signal = Signal(
            alert_id=-(index + 1), alertname=alert.labels["alertname"], status=alert.status or "firing",
            raw_severity=alert.labels.get("severity"), namespace=alert.labels.get("namespace"),
            labels=alert.labels, annotations=alert.annotations or {}, starts_at=alert.starts_at,
            ends_at=alert.ends_at, am_fingerprint=alert.fingerprint or "",
        )
        groups.setdefault(resolution.fingerprint, (resolution.target, []))[1].append(signal)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def bounded(target: ResourceRef, signals: list[Signal]) -> AnalysisResult:
        async with gate:
            return await analyzer.analyze(signals, target)

    return list(await asyncio.gather(*(bounded(target, signals) for target, signals in groups.values())))
