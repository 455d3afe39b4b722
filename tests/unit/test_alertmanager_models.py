"""AlertManager v4 parsing: every real shape accepted, bad input refused with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from kubernaut.models.alertmanager import WebhookPayload, label_fingerprint, parse_go_time

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "alertmanager"
SAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if not p.name.startswith("alertmanager_webhook"))


@pytest.mark.parametrize("name", SAMPLES)
def test_every_captured_payload_parses(name: str) -> None:
    raw = json.loads((PAYLOADS / name).read_text())
    payload = WebhookPayload.model_validate(raw)
    assert len(payload.alerts) == len(raw["alerts"])
    for alert in payload.alerts:
        assert alert.status in ("firing", "resolved")
        assert alert.fingerprint and len(alert.fingerprint) == 16
        assert alert.starts_at.tzinfo is not None


def test_firing_alert_end_of_year_one_means_no_end() -> None:
    payload = WebhookPayload.model_validate(json.loads((PAYLOADS / "captured_am0.25_firing_amtool.json").read_text()))
    assert payload.alerts[0].ends_at is None
    assert payload.alerts[0].fingerprint == "31bb9486e2ea8a9d"  # the sender's own is kept


def test_old_sender_without_status_or_fingerprint() -> None:
    raw = json.loads((PAYLOADS / "sample_prometheus_msteams_minimal_firing.json").read_text())
    alert = WebhookPayload.model_validate(raw).alerts[0]
    assert alert.status == "firing"
    assert alert.fingerprint == label_fingerprint(raw["alerts"][0]["labels"])
    assert alert.starts_at.isoformat() == "2018-03-07T11:33:21.873077+00:00"  # nanoseconds, -05:00 offset


def test_old_sender_resolved_by_ends_at_in_the_past() -> None:
    raw = {"status": "firing", "receiver": "r", "version": "4", "alerts": [
        {"labels": {"alertname": "A"}, "startsAt": "2024-01-01T00:00:00Z", "endsAt": "2024-01-01T01:00:00Z"}]}
    assert WebhookPayload.model_validate(raw).alerts[0].status == "resolved"


def test_escaped_receiver_and_newer_fields() -> None:
    raw = json.loads((PAYLOADS / "captured_am0.25_firing_amtool.json").read_text())
    raw.update(receiver="web\\.hook", notification_reason="new alerts added", routeLabels={"team": "a"}, extra=1)
    payload = WebhookPayload.model_validate(raw)
    assert payload.receiver == "web\\.hook" and payload.route_labels == {"team": "a"}


@pytest.mark.parametrize(("mutation", "field"), [
    ({"status": "burning"}, "status"),
    ({"version": "3"}, "version"),
    ({"alerts": []}, "alerts"),
    ({"alerts": [{"labels": {}, "startsAt": "2024-01-01T00:00:00Z"}]}, "alerts.0.labels"),
    ({"alerts": [{"labels": {"alertname": "A"}, "startsAt": "not a time"}]}, "alerts.0.startsAt"),
    ({"alerts": [{"labels": {"alertname": "A"}, "startsAt": "0001-01-01T00:00:00Z"}]}, "alerts.0.startsAt"),
    ({"alerts": [{"labels": {"alertname": 5}, "startsAt": "2024-01-01T00:00:00Z"}]}, "alerts.0.labels.alertname"),
    ({"truncatedAlerts": -1}, "truncatedAlerts"),
])
def test_invalid_payloads_name_the_field(mutation: dict, field: str) -> None:
    raw = {"version": "4", "status": "firing", "receiver": "r",
           "alerts": [{"labels": {"alertname": "A"}, "startsAt": "2024-01-01T00:00:00Z"}]}
    raw.update(mutation)
    with pytest.raises(ValidationError) as info:
        WebhookPayload.model_validate(raw)
    fields = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert field in fields, fields


def test_go_time_parsing() -> None:
    assert parse_go_time("0001-01-01T00:00:00Z") is None
    assert parse_go_time("2026-11-26T04:08:47.459Z").microsecond == 459000
    with pytest.raises(ValueError):
        parse_go_time("2026-11-26 04:08:47")


def test_label_fingerprint_is_order_independent() -> None:
    assert label_fingerprint({"a": "1", "b": "2"}) == label_fingerprint({"b": "2", "a": "1"})
    assert label_fingerprint({"a": "1"}) != label_fingerprint({"a": "2"})
