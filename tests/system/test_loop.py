"""The whole loop on a real Ray cluster: AlertManager webhook → incident → analysis → dry-run action →
notification, durable in PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.polling import eventually
from tests.support.webhooks import incident_when, payload, unique
from tests.support.workloads import crashlooping_deployment

pytestmark = pytest.mark.integration


@pytest.mark.k8s
async def test_crashloop_alert_becomes_incident_with_dry_run_action_and_notifications(
    api: httpx.AsyncClient, db: asyncpg.Connection, http_sink: Any, smtp_sink: Any, kube_api_client: Any,
    kube_namespace: str,
) -> None:
    pod = crashlooping_deployment(kube_api_client, kube_namespace)
    body = payload("captured_am0.25_firing_prometheus_rule.json")
    body["alerts"][0]["labels"].update(namespace=kube_namespace, pod=pod, deployment="web", container="web")
    body["alerts"][0].pop("fingerprint")
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == 200, response.text
    accepted = response.json()
    assert accepted["accepted"] == 1 and accepted["new"] == 1
    assert len(accepted["incident_ids"]) == 1
    incident_id = accepted["incident_ids"][0]

    # Committed before the 200: the row is there the moment the answer is.
    stored = await db.fetchrow("SELECT * FROM alerts WHERE request_id = $1", accepted["request_id"])
    assert stored is not None and stored["alertname"] == "PodCrashLooping"

    view = await incident_when(api, incident_id, lambda v: v["workflow"] and v["workflow"]["finished_at"]
                               and v["notifications"] and v["notifications"][-1]["status"] == "sent",
                               "workflow finished and notification sent")
    assert view["target"] == {"kind": "Deployment", "name": "web", "namespace": kube_namespace}
    assert view["target_source"] == "kubernetes"
    assert view["status"] == "open" and view["workflow"]["dry_run"] is True
    assert [a["alertname"] for a in view["alerts"]] == ["PodCrashLooping"]
    analysis = view["analysis"]
    assert analysis["engine"] == "rules" and analysis["confidence"] > 0
    # The diagnosis is stored with the analysis and shown in the incident view.
    kinds = {f["kind"] for f in analysis["findings"]}
    assert kinds, analysis
    assert all(f["summary"] and "source" in f for f in analysis["findings"])
    assert view["workflow"]["steps"][0]["name"] == "policy" and view["workflow"]["steps"][-1]["name"] == "notify"
    assert view["actions"], "the dry-run actions are recorded"
    # Dry-run against the real API server: the exact calls, nothing changed.
    assert all(a["dry_run"] and a["status"] == "dry_run" for a in view["actions"]), view["actions"]
    assert view["actions"][-1]["action"] == analysis["action"]
    assert "nothing" in view["actions"][-1]["result"]["message"].lower()
    note = view["notifications"][-1]
    assert note["deliveries"] == {"0": "sent", "1": "sent"}
    events = [e["event"] for e in view["audit"]]
    assert events[:2] == ["incident.opened", "analysis.completed"] and "action.dry_run" in events
    assert events[-1].startswith("workflow.")

    # Delivered for real: over HTTP to the JSON sink and over SMTP to the mail sink.
    title = note["title"]
    await eventually(lambda: _async(any(m.get("title") == title for m in http_sink.received)), what="json sink")
    await eventually(lambda: _async(any(title in str(m["Subject"]) for m in smtp_sink.messages)), what="smtp sink")


async def test_an_unmanaged_namespace_is_refused_and_says_how_to_opt_in(api: httpx.AsyncClient) -> None:
    body = payload("captured_am0.25_firing_prometheus_rule.json")
    # `default` exists and has not opted in.
    body["alerts"][0]["labels"].update(namespace="default", deployment="web-scope", pod="web-scope-7d4b9c8f6-abcde")
    body["alerts"][0].pop("fingerprint")
    (incident_id,) = (await api.post("/api/v1/alerts", json=body)).json()["incident_ids"]
    view = await incident_when(api, incident_id, lambda v: v["workflow"] and v["workflow"]["finished_at"],
                               "workflow finished")
    # The analysis reads the scope from the cluster (the executor's rule) and proposes nothing that could not
    # run: the human reads why and how to opt in. (The executor's own refusal: tests/execution/test_executor.py.)
    analysis = view["analysis"]
    assert analysis["action"] == "notify_only", analysis
    assert "scope.out_of_scope" in {f["kind"] for f in analysis["findings"]}
    assert "kubernaut.ai/managed=true" in analysis["root_cause"], analysis["root_cause"]
    assert not [a for a in view["actions"] if a["action"] != "notify_only"], view["actions"]


async def _async(value: Any) -> Any:
    return value


async def test_alerts_for_one_workload_join_one_incident_and_redelivery_is_idempotent(
    api: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    first = unique(payload("captured_am0.25_firing_amtool.json"), "dedup")
    r1 = await api.post("/alerts", json=first)  # the alias route
    assert r1.status_code == 200, r1.text
    (incident_id,) = r1.json()["incident_ids"]

    # Same workload, another pod and another alert name → same incident, occurrence grows.
    second = json.loads(json.dumps(first))
    second["alerts"][0]["labels"]["alertname"] = "KubePodCrashLooping"
    second["alerts"][0]["labels"]["pod"] = second["alerts"][0]["labels"]["pod"][:-5] + "qwert"
    r2 = await api.post("/api/v1/alerts", json=second)
    assert r2.json()["incident_ids"] == [incident_id]

    # AlertManager redelivers the first group: nothing new is stored.
    r3 = await api.post("/api/v1/alerts", json=first)
    assert r3.status_code == 200
    assert r3.json()["new"] == 0 and r3.json()["duplicates"] == 1 and r3.json()["incident_ids"] == [incident_id]

    row = await db.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    assert row["occurrence_count"] == 2
    assert sorted(row["signals"]) == ["KubePodCrashLooping", "KubePodNotReady"]
    assert await db.fetchval("SELECT count(*) FROM alerts WHERE incident_id = $1", incident_id) == 2
    # Storm collapse: one analysis for the incident however many alerts joined.
    view = await incident_when(api, incident_id, lambda v: v["workflow"] is not None, "workflow")
    assert len(view["analyses"]) == 1


async def test_resolved_webhook_resolves_the_incident(api: httpx.AsyncClient) -> None:
    firing = unique(payload("captured_am0.25_firing_amtool.json"), "res")
    resolved = unique(payload("captured_am0.25_resolved.json"), "res")
    (incident_id,) = (await api.post("/api/v1/alerts", json=firing)).json()["incident_ids"]
    r = await api.post("/api/v1/alerts", json=resolved)
    assert r.status_code == 200 and r.json()["incident_ids"] == [incident_id]
    view = await incident_when(api, incident_id, lambda v: v["status"] == "resolved", "incident resolved")
    assert view["resolved_at"] is not None
    assert any(n["event"] == "incident.resolved" for n in view["notifications"])


@pytest.mark.parametrize("name", [
    "sample_kube_prometheus_KubeSchedulerDown_firing.json",
    "sample_prometheus_msteams_minimal_firing.json",
    "sample_kube_state_metrics_DeploymentReplicasMismatch_resolved.json",
])
async def test_every_shared_payload_is_accepted(api: httpx.AsyncClient, db: asyncpg.Connection, name: str) -> None:
    body = payload(name)
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == len(body["alerts"])
    rows = await db.fetch("SELECT status FROM alerts WHERE request_id = $1", result["request_id"])
    assert len(rows) == result["new"]


async def test_unmatched_alert_is_notify_only(api: httpx.AsyncClient) -> None:
    body = unique(payload("sample_kube_prometheus_KubeSchedulerDown_firing.json"), "nomatch")
    for alert in body["alerts"]:
        alert["labels"]["alertname"] = "SomethingNoRuleKnows"
        alert["startsAt"] = "2026-11-26T05:00:00Z"
    (incident_id,) = (await api.post("/api/v1/alerts", json=body)).json()["incident_ids"]
    view = await incident_when(api, incident_id, lambda v: v["workflow"] and v["workflow"]["phase"] == "completed",
                               "workflow completed")
    assert view["phase"] == "dry_run_completed"
    assert view["analysis"]["action"] == "notify_only"
    # No rule knows it; the sample's namespace is not managed either, which the diagnosis says first.
    assert view["analysis"]["rule_id"] in ("default-notify", "out-of-scope")


async def _counts(db: asyncpg.Connection) -> tuple[int, int]:
    return (await db.fetchval("SELECT count(*) FROM alerts"), await db.fetchval("SELECT count(*) FROM incidents"))


async def test_malformed_json_is_400_and_writes_nothing(api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    before = await _counts(db)
    response = await api.post("/api/v1/alerts", content=b'{"alerts": [', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["error"]
    assert await _counts(db) == before


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda b: b["alerts"][0]["labels"].pop("alertname"), "alerts.0.labels"),
    (lambda b: b["alerts"][0].__setitem__("startsAt", "yesterday"), "alerts.0.startsAt"),
    (lambda b: b.__setitem__("status", "exploded"), "status"),
    (lambda b: b.pop("alerts"), "alerts"),
    (lambda b: b["alerts"].append({"labels": {"alertname": "X"}}), "alerts.1.startsAt"),
])
async def test_schema_violation_is_422_naming_the_field_and_nothing_half_written(
    api: httpx.AsyncClient, db: asyncpg.Connection, mutate: Any, field: str
) -> None:
    body = unique(payload("captured_am0.25_firing_amtool.json"), "bad")
    mutate(body)
    before = await _counts(db)
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["problems"]
    assert any(p["field"] == field for p in problems), problems
    assert field in response.json()["error"]
    assert await _counts(db) == before


async def test_auth_size_and_method_errors(serve_app: Any) -> None:
    async with httpx.AsyncClient(base_url=serve_app.base_url, timeout=10) as anon:
        body = payload("captured_am0.25_firing_amtool.json")
        assert (await anon.post("/api/v1/alerts", json=body)).status_code == 401
        wrong = await anon.post("/api/v1/alerts", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "nope" not in wrong.text
        # Either valid token works (rotation).
        big = {"version": "4", "status": "firing", "receiver": "x" * 70_000, "alerts": []}
        too_large = await anon.post("/api/v1/alerts", json=big, headers={"Authorization": "Bearer test-token-2"})
        assert too_large.status_code == 413
        assert (await anon.get("/health")).status_code == 200


async def test_health_ready_info_docs_and_catalog(api: httpx.AsyncClient) -> None:
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/ready")
    assert ready.status_code == 200 and ready.json()["storage"] == "ok"
    info = (await api.get("/api/v1/info")).json()
    assert info["dry_run"] is True and info["execution_mode"] == "dry-run"
    assert info["storage"]["kind"] == "embedded"
    assert info["executor"]["effective_dry_run"] is True
    assert (await api.get("/docs")).status_code == 200
    schema = (await api.get("/openapi.json")).json()
    assert "/api/v1/alerts" in schema["paths"] and "/api/v1/incidents/{incident_id}" in schema["paths"]
    actions = (await api.get("/api/v1/actions")).json()["actions"]
    assert len(actions) == 30 and all("parameters_schema" in a for a in actions)
    metrics = await api.get("/metrics")
    assert "kubernaut_gateway_requests_total" in metrics.text


async def test_analyze_endpoint_decides_without_acting(api: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    before = await _counts(db)
    body = unique(payload("captured_am0.25_firing_prometheus_rule.json"), "analyze")
    response = await api.post("/api/v1/analyze", json=body)
    assert response.status_code == 200, response.text
    (analysis,) = response.json()["analyses"]
    # The sample's namespace is not managed (nor does it exist): nothing is proposed, and the diagnosis says why.
    assert analysis["action"] == "notify_only" and analysis["engine"] == "rules"
    assert {f["kind"] for f in analysis["findings"]} >= {"scope.out_of_scope"}
    assert set(analysis) >= {"action", "parameters", "target", "confidence", "engine", "root_cause", "alternatives"}
    assert await _counts(db) == before
