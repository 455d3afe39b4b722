"""Pure helpers of the runner: pod states, names, the AlertManager body. No cluster."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema
import pytest

from kubernaut.evaluation.cluster import _version, dns_label, namespace_name, pod_specs, pod_states
from kubernaut.evaluation.command import gate_failures
from kubernaut.evaluation.runner import EvalConfigError, HttpAnalysis, InProcessAnalysis, pick_analysis, webhook_body
from kubernaut.models.alertmanager import WebhookPayload

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "alertmanager" / "alertmanager_webhook_v4.schema.json"


def pod(phase: str, containers: list[dict], ready: bool = False, **meta: str) -> dict:
    return {"metadata": {"name": "p", **meta},
            "status": {"phase": phase, "containerStatuses": containers,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


RUNNING = {"name": "c", "state": {"running": {}}}


def test_pod_states() -> None:
    assert pod_states(pod("Running", [RUNNING], ready=True)) == {"any", "running", "ready"}
    assert pod_states(pod("Running", [RUNNING])) == {"any", "running", "not_ready"}
    crash = {"name": "c", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}
    assert pod_states(pod("Running", [crash])) == {"any", "crashloop", "oom"}
    pull = {"name": "c", "state": {"waiting": {"reason": "ImagePullBackOff"}}}
    assert pod_states(pod("Pending", [pull])) == {"any", "pending", "image_pull"}
    config = {"name": "c", "state": {"waiting": {"reason": "CreateContainerConfigError"}}}
    assert "config_error" in pod_states(pod("Pending", [config]))
    creating = {"name": "c", "state": {"waiting": {"reason": "ContainerCreating"}}}
    assert "container_creating" in pod_states(pod("Pending", [creating]))
    assert pod_states({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}) == {"any", "pending"}
    assert pod_states(pod("Running", [RUNNING], deletionTimestamp="2026-01-01T00:00:00Z")) == set()


def test_namespace_names_are_dns_labels() -> None:
    assert namespace_name("a1b2c3", "oom-at-limit") == "ev-a1b2c3-oom-at-limit"
    long = namespace_name("a1b2c3", "x" * 40 + "-" + "y" * 40)
    assert len(long) <= 63 and not long.endswith("-")
    assert dns_label("Some_Thing--Odd.-") == "some-thing-odd"


def test_version_ranking() -> None:
    assert _version("v1") == (1, 2, 0)
    assert _version("v2beta2") > _version("v2beta1") > _version("v2alpha1")
    assert _version("weird") == (0, 0, 0)


def test_pod_specs_of_workloads() -> None:
    spec = {"containers": []}
    assert pod_specs({"kind": "Pod", "spec": spec}) == [spec]
    assert pod_specs({"kind": "Deployment", "spec": {"template": {"spec": spec}}}) == [spec]
    assert pod_specs({"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}}}) == [spec]
    assert pod_specs({"kind": "ConfigMap", "data": {}}) == []


def test_webhook_body_is_a_valid_alertmanager_v4_body() -> None:
    alerts = [
        {"labels": {"alertname": "KubePodCrashLooping", "namespace": "ns", "pod": "a"}, "annotations": {"s": "1"},
         "status": "firing"},
        {"labels": {"alertname": "KubePodCrashLooping", "namespace": "ns", "pod": "b"}, "annotations": {"s": "1"},
         "status": "resolved"},
    ]
    body = webhook_body(alerts)
    jsonschema.validate(body, json.loads(SCHEMA.read_text()))
    parsed = WebhookPayload.model_validate(body)
    assert parsed.status == "firing"
    assert [a.status for a in parsed.alerts] == ["firing", "resolved"]
    assert len({a.fingerprint for a in parsed.alerts}) == 2
    assert body["commonLabels"] == {"alertname": "KubePodCrashLooping", "namespace": "ns"}
    assert body["groupLabels"] == {"alertname": "KubePodCrashLooping", "namespace": "ns"}
    assert body["commonAnnotations"] == {"s": "1"}
    assert parsed.alerts[0].ends_at is None and parsed.alerts[1].ends_at is not None


def test_pick_analysis_prefers_the_scenario_namespace() -> None:
    a = {"target": {"kind": "Node", "name": "n"}}
    b = {"target": {"kind": "Deployment", "name": "d", "namespace": "ev-1-s"}}
    assert pick_analysis([a, b], "ev-1-s") is b
    assert pick_analysis([a], "ev-1-s") is a
    assert pick_analysis([], "ev-1-s") is None


async def test_url_mode_posts_the_body_with_the_token() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("authorization") != "Bearer s3cret":
            return httpx.Response(401, json={"detail": "no"})
        answer = {"action": "notify_only", "target": {"kind": "Pod", "name": "p"}}
        return httpx.Response(200, json={"analyses": [answer]})

    body = webhook_body([{"labels": {"alertname": "A"}}])
    good = HttpAnalysis("http://kubernaut:8000/", "s3cret", transport=httpx.MockTransport(answer))
    assert (await good.analyze(body))[0]["action"] == "notify_only"
    await good.close()
    assert seen[0].url == httpx.URL("http://kubernaut:8000/api/v1/analyze")
    assert json.loads(seen[0].content) == body
    bad = HttpAnalysis("http://kubernaut:8000", None, transport=httpx.MockTransport(answer))
    with pytest.raises(RuntimeError, match="answered 401"):
        await bad.analyze(body)
    await bad.close()


def test_llm_engine_without_an_llm_fails_clearly(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBERNAUT_ANALYSIS__LLM_MODEL", raising=False)
    with pytest.raises(EvalConfigError, match="KUBERNAUT_ANALYSIS__LLM_MODEL"):
        InProcessAnalysis(str(tmp_path / "kubeconfig"), "llm")


def test_gates() -> None:
    assert gate_failures(0.5, 3, None, None) == []
    assert gate_failures(0.5, 3, 0.8, None) == ["rate 0.50 < --min-rate 0.80"]
    assert gate_failures(0.9, 3, 0.8, 2) == ["harmful 3 > --max-harmful 2"]
    assert gate_failures(0.8, 2, 0.8, 2) == []
