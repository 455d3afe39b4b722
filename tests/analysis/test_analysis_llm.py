"""The LLM path through the real openai SDK, against an in-process HTTP transport scripted per test:
re-asks, escalation, budgets, circuit breaker, output modes, and the rules fallback with its reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from openai import AsyncOpenAI

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.config.settings import AnalysisConfig
from tests.support.llm_provider import DEPLOY, RULES, CrashingWeb, Provider, completion, crashloop, decision


def analyzer(provider: Provider, rollout: bool = True, **overrides: Any) -> tuple[Analyzer, LLMAnalyzer]:
    cfg = AnalysisConfig(**{"llm_provider": "vllm", "llm_base_url": "http://llm.test/v1", "llm_model": "small",
                            "llm_max_retries": 0, **overrides})
    client = AsyncOpenAI(base_url=cfg.llm_base_url, api_key="k", max_retries=0,
                         http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(provider)))
    llm = LLMAnalyzer(cfg, client=client)
    return Analyzer(cfg, RULES, CrashingWeb(rollout), llm), llm  # type: ignore[arg-type]


async def test_valid_answer_decides_and_usage_is_recorded() -> None:
    provider = Provider({"small": [decision(parameters=[{"name": "grace_period_seconds", "value": "20"}])]})
    engine, _ = analyzer(provider, rollout=False, llm_prices={"small": {"prompt": 0.001, "completion": 0.002}})
    result = await engine.analyze(crashloop(), DEPLOY)
    assert (result.engine, result.action, result.parameters) == ("llm:small", "restart_pod",
                                                                {"grace_period_seconds": 20})
    assert result.justified_by == "probe.failing"
    assert result.fallback_reason is None and result.flags == []
    usage = result.llm
    assert usage and (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 500, 60)
    assert usage.cost_usd == pytest.approx(0.5 * 0.001 + 0.06 * 0.002)
    (body,) = provider.requests
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["messages"][0]["role"] == "system" and body["temperature"] == 0


async def test_invalid_json_is_repaired_by_a_corrective_re_ask() -> None:
    provider = Provider({"small": ['{"root_cause": "oops"', decision()]})
    engine, _ = analyzer(provider)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "llm:small" and result.llm and result.llm.calls == 2
    repair = provider.requests[1]["messages"]
    assert repair[-2]["role"] == "assistant" and repair[-2]["content"] == '{"root_cause": "oops"'
    assert "rejected" in repair[-1]["content"] and "not valid JSON" in repair[-1]["content"]


async def test_persistently_invalid_answers_fall_back_to_the_rules_with_the_reason() -> None:
    provider = Provider({"small": ["nonsense", decision("scale_to_zero"), decision(target="Pod/other/x")]})
    engine, _ = analyzer(provider)
    result = await engine.analyze(crashloop(), DEPLOY)
    # The rules' own answer with this evidence: the rollout that changed the image is rolled back.
    assert result.engine == "rules" and result.action == "rollback_deployment"
    assert result.rule_id == "rollout-introduced-failure"
    assert result.fallback_reason and result.fallback_reason.startswith("llm:small: small gave no valid answer in 3")
    assert "outside this incident's scope" in result.fallback_reason
    assert len(result.flags) == 2  # the unknown action and the foreign target are flagged, the nonsense is not
    assert result.llm and result.llm.calls == 3


async def test_low_confidence_escalates_to_the_stronger_model() -> None:
    provider = Provider({"small": [decision(confidence=30)],
                         "big": [decision("rollback_deployment", "Deployment/shop/web", 85)]})
    engine, _ = analyzer(provider, llm_escalation_model="big", llm_escalation_below_confidence=0.6)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "llm:big" and result.action == "rollback_deployment" and result.confidence == 0.85
    assert result.llm and result.llm.escalated and result.llm.models == ["small", "big"]
    assert [r["model"] for r in provider.requests] == ["small", "big"]
    assert result.justified_by == "rollout.suspect"


async def test_failed_escalation_keeps_the_first_valid_answer() -> None:
    provider = Provider({"small": [decision(confidence=30)], "big": ["x", "y", "z"]})
    engine, _ = analyzer(provider, llm_escalation_model="big")
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "llm:small" and result.confidence == 0.3
    assert any("escalation to big failed" in line for line in result.reasoning)


async def test_token_budget_too_small_means_no_call_at_all() -> None:
    provider = Provider({"small": [decision()]})
    engine, _ = analyzer(provider, llm_incident_token_budget=300)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert provider.requests == []
    assert result.engine == "rules" and "token budget exhausted" in (result.fallback_reason or "")


async def test_token_budget_stops_re_asks() -> None:
    # Each call costs 560 tokens; the budget allows the first but not a second.
    provider = Provider({"small": ["bad", decision()]})
    engine, _ = analyzer(provider, llm_incident_token_budget=2000)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert len(provider.requests) == 1 and result.engine == "rules"
    # The answer spent the budget: the reason says what was wrong with it, not only that the budget ran out.
    reason = result.fallback_reason or ""
    assert "gave no valid answer in 1 attempts (no token budget left for another" in reason, reason
    assert "last problem: " in reason and "not valid JSON" in reason, reason


async def test_answer_slower_than_the_time_budget_falls_back() -> None:
    async def slow(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(5)
        return httpx2.Response(200, json=completion(decision(), "small"))

    provider = Provider({"small": [slow]})
    engine, llm = analyzer(provider, llm_incident_time_budget_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await engine.analyze(crashloop(), DEPLOY)
    assert loop.time() - started < 2.0
    assert result.engine == "rules" and "time budget of 0.5s" in (result.fallback_reason or "")
    assert llm.breaker.consecutive_failures == 1


async def test_breaker_opens_after_provider_failures_and_then_skips_the_provider() -> None:
    def refused(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    async def refuse(request: httpx2.Request) -> httpx2.Response:
        return refused(request)

    provider = Provider({"small": [refuse, refuse]})
    engine, llm = analyzer(provider, llm_breaker_failures=2, llm_breaker_reset_s=300)
    for _ in range(2):
        result = await engine.analyze(crashloop(), DEPLOY)
        assert result.engine == "rules" and "provider error" in (result.fallback_reason or "")
    assert llm.status()["circuit"]["state"] == "open" and llm.status()["available"] is False
    result = await engine.analyze(crashloop(), DEPLOY)
    assert len(provider.requests) == 2  # the third incident did not call the provider
    assert "circuit breaker open" in (result.fallback_reason or "")
    assert llm.metrics.snapshot()["counts"]["fallbacks"] == 3


async def test_http_500_is_a_provider_error() -> None:
    provider = Provider({"small": [httpx2.Response(500, json={"error": {"message": "boom"}})]})
    engine, llm = analyzer(provider)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "rules" and "server_error: HTTP 500" in (result.fallback_reason or "")
    assert llm.breaker.consecutive_failures == 1


@pytest.mark.parametrize(("mode", "check"), [
    ("json_object", lambda body: body["response_format"]["type"] == "json_object"
     and body["response_format"]["schema"]["required"][0] == "root_cause"),
    ("tools", lambda body: body["tool_choice"]["function"]["name"] == "remediation_decision"
     and body["tools"][0]["function"]["parameters"]["type"] == "object" and "response_format" not in body),
    ("prompt", lambda body: "response_format" not in body and "tools" not in body),
])
async def test_output_modes_send_the_provider_specific_request(mode: str, check: Callable[[dict], bool]) -> None:
    provider = Provider({"small": [decision()]})
    engine, _ = analyzer(provider, llm_response_format=mode)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "llm:small", result.fallback_reason
    assert check(provider.requests[0])


def test_provider_defaults() -> None:
    assert LLMAnalyzer(AnalysisConfig(llm_provider="llama-cpp", llm_base_url="http://x/v1", llm_model="m")).mode \
        == "json_object"
    openai = LLMAnalyzer(AnalysisConfig(llm_provider="openai", llm_model="gpt-4o-mini", llm_api_key="sk-test"))
    assert openai.mode == "json_schema"
    ollama = LLMAnalyzer(AnalysisConfig(llm_provider="ollama", llm_model="llama3"))
    assert str(ollama.client.base_url).startswith("http://127.0.0.1:11434/v1")
    with pytest.raises(ValueError, match="llm_base_url"):
        LLMAnalyzer(AnalysisConfig(llm_provider="vllm", llm_model="m"))


async def test_the_llm_never_lowers_the_bar_an_unsupported_mutation_is_refused() -> None:
    """A valid, in-policy answer the findings do not support (a rollback with no rollout to blame) is screened
    like the rules' own: not proposed, the recommendation kept for the human."""
    provider = Provider({"small": [decision("rollback_deployment", "Deployment/shop/web", 95)]})
    engine, _ = analyzer(provider, rollout=False)
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "llm:small" and result.rule_id == "llm:small+harm", result
    assert result.action in ("notify_only", "collect_diagnostics")
    assert result.alternatives[0].action == "rollback_deployment"
    assert "not proposed: no evidence that it helps here" in result.alternatives[0].reason
