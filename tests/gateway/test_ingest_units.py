"""Filter rules and the per-sender rate limiter."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from kubernaut.config.settings import FilterRule, ProcessingConfig
from kubernaut.gateway.ratelimit import RateLimiter
from kubernaut.models.signal import Signal
from kubernaut.processing.filters import decide, load_filters


def signal(**labels: str) -> Signal:
    return Signal(alert_id=1, alertname=labels.get("alertname", "A"), status="firing", labels=labels,
                  annotations={"summary": "disk almost full"}, namespace=labels.get("namespace"),
                  raw_severity=labels.get("severity"), starts_at=datetime.now(timezone.utc), am_fingerprint="f")


RULES = [
    FilterRule(name="no-watchdog", labels={"alertname": "Watchdog"}),
    FilterRule(name="keep-prod-critical", action="process", namespaces=["*-prod"], severity=["critical"]),
    FilterRule(name="drop-sandboxes", namespaces=["sandbox-*", "tmp-?"], mode="any"),
    FilterRule(name="drop-info", severity=["info"]),
]


@pytest.mark.parametrize(("labels", "processed", "rule"), [
    ({"alertname": "Watchdog"}, False, "no-watchdog"),
    ({"alertname": "X", "namespace": "shop-prod", "severity": "critical"}, True, "keep-prod-critical"),
    ({"alertname": "X", "namespace": "sandbox-42", "severity": "critical"}, False, "drop-sandboxes"),
    ({"alertname": "X", "namespace": "tmp-a"}, False, "drop-sandboxes"),
    ({"alertname": "X", "namespace": "tmp-ab"}, True, None),
    ({"alertname": "X", "namespace": "shop", "severity": "low"}, False, "drop-info"),  # normalized severity
    ({"alertname": "X", "namespace": "shop", "severity": "warning"}, True, None),
])
def test_first_matching_filter_decides(labels: dict, processed: bool, rule: str | None) -> None:
    from kubernaut.processing.classification import normalize_severity

    ok, why = decide(RULES, signal(**labels), normalize_severity(labels.get("severity"))[0])
    assert ok is processed
    assert (rule in why) if rule else why == "no filter matched"


def test_filter_without_condition_is_refused() -> None:
    with pytest.raises(ValidationError, match="no condition"):
        FilterRule(name="everything")


def test_filters_file_is_loaded_after_inline_filters(tmp_path) -> None:
    path = tmp_path / "filters.yaml"
    path.write_text("- {name: from-file, annotations: {summary: 'disk*'}}\n")
    rules = load_filters(ProcessingConfig(filters=[RULES[0]], filters_file=path))
    assert [r.name for r in rules] == ["no-watchdog", "from-file"]
    assert decide(rules, signal(alertname="Y"), "warning") == (False, "filter 'from-file' (drop)")


def test_rate_limiter_allows_burst_then_refills() -> None:
    limiter = RateLimiter(rate_per_s=10, burst=5)
    assert [limiter.acquire("am-1", now=0.0) for _ in range(5)] == [0.0] * 5
    wait = limiter.acquire("am-1", now=0.0)
    assert wait == pytest.approx(0.1)
    assert limiter.acquire("am-2", now=0.0) == 0.0  # other senders are not affected
    assert limiter.acquire("am-1", now=0.2) == 0.0  # refilled


def test_rate_limiter_disabled_and_bounded_memory() -> None:
    assert RateLimiter(rate_per_s=0, burst=1).acquire("x") == 0.0
    limiter = RateLimiter(rate_per_s=1, burst=1, max_senders=100)
    for i in range(1000):
        limiter.acquire(f"s{i}", now=0.0)
    assert len(limiter._buckets) == 100
