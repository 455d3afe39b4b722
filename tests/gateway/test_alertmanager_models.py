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


def _body(receiver: str = "kubernaut", **alert: object) -> dict:
    base = {"labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-7d4b9c-x2x4z"},
            "startsAt": "2026-11-26T04:00:00Z"}
    return {"version": "4", "status": "firing", "receiver": receiver, "alerts": [{**base, **alert}]}


@pytest.mark.parametrize(("body", "field", "needle"), [
    ({**_body(), "receiver": "kube\x00naut"}, "receiver", "NUL"),
    ({**_body(), "groupKey": "{}:{alertname=\"A\x00\"}"}, "groupKey", "NUL"),
    ({**_body(), "externalURL": "http://am\x00"}, "externalURL", "NUL"),
    (_body(fingerprint="ab\x00cd"), "alerts.0.fingerprint", "NUL"),
    (_body(generatorURL="http://prom/graph\x00"), "alerts.0.generatorURL", "NUL"),
    (_body(annotations={"summary\x00": "x"}), "alerts.0.annotations", "NUL"),
    (_body(labels={"alertname": "A", "namespace": "n" * 64}), "alerts.0.labels", "labels.namespace"),
    (_body(labels={"alertname": "A", "namespace": "Shop_Prod"}), "alerts.0.labels", "labels.namespace"),
    (_body(labels={"alertname": "A", "exported_namespace": "x" * 3000}), "alerts.0.labels", "exported_namespace"),
    (_body(labels={"alertname": "A", "namespace": "shop", "pod": "p" * 254}), "alerts.0.labels", "labels.pod"),
    (_body(labels={"alertname": "A", "namespace": "shop", "deployment": "Web App"}), "alerts.0.labels",
     "labels.deployment"),
    (_body(labels={"alertname": "A", "node": "n" * 300}), "alerts.0.labels", "labels.node"),
    (_body(startsAt="9999-12-31T23:59:59-01:00"), "alerts.0.startsAt", "out of range"),
    (_body(startsAt="9999-12-31T23:59:59Z"), "alerts.0.startsAt", "ahead of the receiver"),
    (_body(startsAt="1970-01-01T00:00:00Z"), "alerts.0.startsAt", "before 2000"),
    (_body(endsAt="9000-01-01T00:00:00Z"), "alerts.0.endsAt", "ahead of the receiver"),
])
def test_what_storage_or_processing_would_refuse_is_refused_by_name(body: dict, field: str, needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookPayload.model_validate(body)
    (error,) = caught.value.errors()
    assert ".".join(str(p) for p in error["loc"]).startswith(field)
    assert needle in error["msg"]


def test_valid_kubernetes_names_and_a_skewed_clock_are_accepted() -> None:
    from datetime import datetime, timedelta, timezone

    soon = (datetime.now(timezone.utc) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {"alertname": "A", "namespace": "n" * 63, "pod": "web-0", "node": "ip-10-0-0-1.ec2.internal",
              "job_name": "backup-29000000", "service": "Any Value"}
    alert = WebhookPayload.model_validate(_body(labels=labels, startsAt=soon)).alerts[0]
    assert alert.labels == labels
