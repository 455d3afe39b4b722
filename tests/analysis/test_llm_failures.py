"""LLM failures against real servers: down, slower than the budget, killed mid-request, answering invalid
JSON or an unknown action. In every case the rule engine decides and the record says why."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import pytest

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.analysis.rules import load_rules
from kubernaut.config.settings import AnalysisConfig
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from tests.support.polling import eventually
from tests.support.sinks import free_port

pytestmark = pytest.mark.integration

RULES = load_rules()
TARGET = ResourceRef(kind="Deployment", name="web", namespace="shop")
POD = "web-5f6d7c8b9-xyz12"


def crashloop() -> list[Signal]:
    labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": POD, "container": "web"}
    return [Signal(alert_id=1, alertname="KubePodCrashLooping", status="firing", labels=labels,
                   starts_at=datetime.now(timezone.utc), am_fingerprint="f")]


def engine_for(base_url: str, **overrides: Any) -> tuple[Analyzer, LLMAnalyzer]:
    cfg = AnalysisConfig(**{
        "llm_provider": "compatible", "llm_base_url": base_url, "llm_model": "smollm2-135m",
        "llm_max_completion_tokens": 256, "llm_incident_time_budget_s": 60, "llm_request_timeout_s": 60,
        "llm_max_retries": 1, **overrides})
    llm = LLMAnalyzer(cfg)
    return Analyzer(cfg, RULES, None, llm), llm


def assert_rules_decided(result: Any, reason: str) -> None:
    assert result.engine == "rules", result
    # The rules' answer: the crashloop rule's restart, which without the cluster's evidence is not proposed.
    assert (result.action, result.rule_id) == ("notify_only", "crashloop+harm")
    assert result.alternatives[0].action == "restart_pod"
    assert result.fallback_reason and result.fallback_reason.startswith("llm:smollm2-135m: ")
    assert reason in result.fallback_reason, result.fallback_reason


async def test_server_down_falls_back_and_opens_the_breaker() -> None:
    engine, llm = engine_for(f"http://127.0.0.1:{free_port()}/v1", llm_breaker_failures=2)
    for _ in range(2):
        assert_rules_decided(await engine.analyze(crashloop(), TARGET), "provider error from smollm2-135m: connection")
    status = llm.status()
    assert status["circuit"]["state"] == "open" and status["available"] is False
    assert "connection" in status["circuit"]["last_error"]
    started = time.monotonic()
    result = await engine.analyze(crashloop(), TARGET)
    assert_rules_decided(result, "circuit breaker open after 2 provider failures")
    assert time.monotonic() - started < 1.0  # no connection attempt while open
    assert result.llm is not None and result.llm.calls == 0


async def test_a_rejected_request_is_no_outage_but_wrong_credentials_open_the_breaker(scripted_llm: Any) -> None:
    """A 400 (e.g. a prompt longer than the model's context window) is an answer about one request: the rules
    decide for it, the next incident still asks the model. A 401 means the provider cannot serve us at all."""
    from tests.plugins.llm_server import Scripted

    engine, llm = engine_for(scripted_llm.base_url, llm_breaker_failures=2)
    too_long = "This model's maximum context length is 2048 tokens; your prompt has 2900"
    scripted_llm.script(*(Scripted(status=400, content=too_long) for _ in range(3)))
    for _ in range(3):
        assert_rules_decided(await engine.analyze(crashloop(), TARGET), "rejected")
    assert llm.status()["circuit"]["state"] == "closed" and len(scripted_llm.requests) == 3

    scripted_llm.script(*(Scripted(status=401, content="invalid api key") for _ in range(2)))
    for _ in range(2):
        assert_rules_decided(await engine.analyze(crashloop(), TARGET), "unusable")
    assert llm.status()["circuit"]["state"] == "open"


async def test_answer_slower_than_the_time_budget_falls_back_within_the_budget(llm_server: Any) -> None:
    engine, llm = engine_for(llm_server.base_url, llm_incident_time_budget_s=0.5)
    started = time.monotonic()
    result = await engine.analyze(crashloop(), TARGET)
    elapsed = time.monotonic() - started
    assert_rules_decided(result, "did not answer within the time budget of 0.5s")
    assert elapsed < 2.0, elapsed
    assert llm.breaker.consecutive_failures == 1  # slowness counts against the provider


async def test_server_killed_mid_request_falls_back(llm_server_factory: Any) -> None:
    server = llm_server_factory()
    engine, _ = engine_for(server.base_url)
    task = asyncio.ensure_future(engine.analyze(crashloop(), TARGET))
    await eventually(lambda: asyncio.to_thread(server.busy), timeout=30, interval=0.05,
                     what="llama-server generating")
    server.kill()
    result = await asyncio.wait_for(task, timeout=60)
    assert_rules_decided(result, "provider error from smollm2-135m: connection")
    assert result.llm is not None and result.llm.calls == 0


async def test_real_model_cut_off_mid_json_is_re_asked_then_the_rules_decide(llm_server: Any) -> None:
    # 64 completion tokens cannot hold the schema's answer: every reply is truncated, invalid JSON.
    # (The budget is generous: on 2 cores shared with other test sessions a call has taken a minute.)
    engine, _ = engine_for(llm_server.base_url, llm_max_completion_tokens=64, llm_max_repairs=1,
                           llm_incident_time_budget_s=480, llm_request_timeout_s=240)
    result = await engine.analyze(crashloop(), TARGET)
    assert_rules_decided(result, "gave no valid answer in 2 attempts")
    assert "cut off at 64 tokens" in (result.fallback_reason or "")
    assert result.llm is not None and result.llm.calls == 2 and result.llm.completion_tokens > 64


async def test_invalid_json_answers_fall_back_with_the_reason(scripted_llm: Any) -> None:
    scripted_llm.script('{"root_cause": "the pod', "I think you should restart it.", "{not json}")
    engine, _ = engine_for(scripted_llm.base_url)
    result = await engine.analyze(crashloop(), TARGET)
    assert_rules_decided(result, "not valid JSON")
    assert len(scripted_llm.requests) == 3  # one ask, two corrective re-asks
    assert "rejected" in scripted_llm.requests[-1]["messages"][-1]["content"]
    assert scripted_llm.requests[0]["response_format"]["type"] == "json_schema"


async def test_unknown_action_is_rejected_flagged_and_the_rules_decide(scripted_llm: Any) -> None:
    unknown = ('{"root_cause": "x", "remediation": {"action": "delete_namespace", "target": "Namespace/shop", '
               '"parameters": []}, "confidence": 99, "alternatives": []}')
    scripted_llm.script(unknown, unknown, unknown)
    engine, _ = engine_for(scripted_llm.base_url)
    result = await engine.analyze(crashloop(), TARGET)
    assert_rules_decided(result, "unknown action 'delete_namespace'")
    assert len(result.flags) == 3 and all("delete_namespace" in f for f in result.flags)
