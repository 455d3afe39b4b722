"""The gateway's ``/metrics``: this process's application metrics, and the webhook outcomes recorded once.

A webhook answer is recorded in one place (:func:`webhook_answered`). ``kubernaut_gateway_requests_total``,
the name this route has always served, is the count of ``kubernaut_webhook_duration_seconds`` read back at
scrape time — not a second counter that could drift from it.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from kubernaut.observability import metrics


def webhook_answered(outcome: str, seconds: float) -> None:
    """One webhook request was answered with ``outcome`` (accepted or the reason it was refused)."""
    metrics.webhook_handled(outcome, seconds)
    if outcome != "accepted":
        metrics.alert_rejected(outcome)


class _RequestsByOutcome(Collector):
    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("kubernaut_gateway_requests", "Webhook requests by outcome", labels=["outcome"])
        for outcome, count in sorted(metrics.webhooks_answered().items()):
            family.add_metric([outcome], count)
        yield family


_registry = CollectorRegistry(auto_describe=False)
_registry.register(_RequestsByOutcome())


def render() -> bytes:
    """Prometheus text of this replica: the request counts by outcome and every application metric."""
    return generate_latest(_registry) + metrics.render_local()[0]
