"""The prompt fits the model's context window: the DATA block is trimmed (least useful context first, named in
the prompt and the analysis) when the window is configured or read from the server's /v1/models, through the
real openai SDK against the scripted provider."""

from __future__ import annotations

import json
from typing import Any

import httpx2
from openai import AsyncOpenAI

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.analysis.prompt_fit import CHARS_PER_TOKEN, TRIM_STEPS, fit_data, serialize
from kubernaut.config.settings import AnalysisConfig
from kubernaut.context.models import EventSummary, NodeSummary, ResourceContext
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from tests.support.llm_provider import DEPLOY, RULES, CrashingWeb, Provider, crashloop, decision

ROLLBACK = decision("rollback_deployment", "Deployment/shop/web")


class BusyWeb(CrashingWeb):
    """web's crash loop after a rollout, seen on a busy cluster: many long events and labelled nodes."""

    async def context_for(self, target: ResourceRef, **kwargs: Any) -> ResourceContext:
        ctx = await super().context_for(target, **kwargs)
        events = [EventSummary(type="Warning", reason=f"Reason{i}", object=f"Pod/web-{i}", count=i + 1,
                               message=f"event {i}: " + "x" * 200) for i in range(6)]
        nodes = [NodeSummary(name=f"node-{i}", ready=True, labels={f"label-{j}": "v" * 40 for j in range(12)},
                             allocatable={"cpu": "4", "memory": "16Gi"}) for i in range(3)]
        return ctx.model_copy(update={"events": events, "nodes": nodes})


def annotated_crashloop() -> list[Signal]:
    (signal,) = crashloop()
    return [signal.model_copy(update={"annotations": {"description": "d" * 290, "runbook_url": "r" * 290}})]


class ModelsListing:
    """The scripted provider, plus GET /v1/models listing the model with ``max_model_len`` when given."""

    def __init__(self, provider: Provider, max_model_len: int | None) -> None:
        self.provider, self.max_model_len, self.listed = provider, max_model_len, 0

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.method == "GET" and request.url.path.endswith("/models"):
            self.listed += 1
            entry: dict[str, Any] = {"id": "small", "object": "model", "created": 1, "owned_by": "test"}
            if self.max_model_len is not None:
                entry["max_model_len"] = self.max_model_len
            return httpx2.Response(200, json={"object": "list", "data": [entry]})
        return await self.provider(request)


def analyzer(handler: Any, **overrides: Any) -> tuple[Analyzer, LLMAnalyzer]:
    cfg = AnalysisConfig(**{"llm_provider": "vllm", "llm_base_url": "http://llm.test/v1", "llm_model": "small",
                            "llm_max_retries": 0, "llm_max_completion_tokens": 300, **overrides})
    client = AsyncOpenAI(base_url=cfg.llm_base_url, api_key="k", max_retries=0,
                         http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))
    llm = LLMAnalyzer(cfg, client=client)
    return Analyzer(cfg, RULES, BusyWeb(), llm), llm  # type: ignore[arg-type]


def request_chars(body: dict[str, Any]) -> int:
    return sum(len(m["content"]) for m in body["messages"])


async def test_without_a_known_window_nothing_is_trimmed() -> None:
    provider = Provider({"small": [ROLLBACK]})
    engine, llm = analyzer(ModelsListing(provider, None))
    result = await engine.analyze(annotated_crashloop(), DEPLOY)
    assert result.engine == "llm:small", result.fallback_reason
    user = provider.requests[0]["messages"][1]["content"]
    assert "DATA TRIMMED" not in user and "node-2" in user and "event 5" in user
    assert llm.status()["context_windows"] == {"source": "server", "models": {"small": None}}


async def test_a_configured_window_trims_the_data_block_least_useful_first() -> None:
    provider = Provider({"small": [ROLLBACK]})
    untrimmed = Provider({"small": [ROLLBACK]})
    await analyzer(untrimmed)[0].analyze(annotated_crashloop(), DEPLOY)
    full = request_chars(untrimmed.requests[0])
    window = 1500
    assert full / CHARS_PER_TOKEN + 300 > window  # the busy incident does not fit untrimmed
    engine, llm = analyzer(provider, llm_context_tokens=window)
    result = await engine.analyze(annotated_crashloop(), DEPLOY)
    assert result.engine == "llm:small", result.fallback_reason
    (body,) = provider.requests
    # Prompt plus the completion asked for fit the window (estimated conservatively: 3 characters a token).
    assert request_chars(body) / CHARS_PER_TOKEN + body["max_tokens"] <= window
    assert body["max_tokens"] >= 64
    user = body["messages"][1]["content"]
    note = next(line for line in user.splitlines() if line.startswith("DATA TRIMMED"))
    assert "context.nodes" in note and "node-0" not in user  # the cluster-wide detail went first
    # What decides stays: the crash loop's pod, the rollout's revisions, the observed facts.
    assert "CrashLoopBackOff" in user and '"observed"' in user
    trimmed = next(r for r in result.reasoning if r.startswith("prompt trimmed"))
    assert "1500-token context" in trimmed and "context.nodes" in trimmed
    assert llm.status()["context_windows"] == {"source": "config", "tokens": 1500}


async def test_the_window_is_read_from_the_servers_model_listing() -> None:
    provider = Provider({"small": [ROLLBACK, ROLLBACK]})
    listing = ModelsListing(provider, 1400)
    engine, llm = analyzer(listing)
    for _ in range(2):
        result = await engine.analyze(annotated_crashloop(), DEPLOY)
        assert result.engine == "llm:small", result.fallback_reason
        assert any(r.startswith("prompt trimmed to fit small's 1400-token context") for r in result.reasoning)
    assert listing.listed == 1  # read once, not per incident
    for body in provider.requests:
        assert request_chars(body) / CHARS_PER_TOKEN + body["max_tokens"] <= 1400
    assert llm.status()["context_windows"] == {"source": "server", "models": {"small": 1400}}


async def test_a_window_too_small_for_any_prompt_lets_the_rules_decide_without_a_call() -> None:
    provider = Provider({"small": [ROLLBACK]})
    engine, llm = analyzer(provider, llm_context_tokens=600)
    result = await engine.analyze(annotated_crashloop(), DEPLOY)
    assert result.engine == "rules"
    assert result.fallback_reason and "does not fit small's 600-token context" in result.fallback_reason
    assert provider.requests == []
    assert llm.status()["circuit"]["state"] == "closed"  # not the provider's fault


def test_trim_steps_go_in_order_and_stop_once_it_fits() -> None:
    data = {"alerts": [{"labels": {"alertname": "A"}, "annotations": {"d": "y" * 500}}, {"labels": {}}],
            "observed": {"pod.crashlooping": True},
            "context": {"nodes": [{"name": "n" * 300}], "pvcs": [{"name": "p" * 300}],
                        "events": [f"e{i}" + "z" * 100 for i in range(6)]},
            "findings": [{"kind": "k", "summary": "s", "evidence": ["v" * 100]}]}
    size = len(serialize(data))
    fitted, trimmed = fit_data(data, size - 300)  # dropping the nodes is enough
    assert trimmed == ["context.nodes"] and "pvcs" in fitted["context"]
    assert "nodes" in data["context"]  # the caller's data is not changed
    fitted, trimmed = fit_data(data, 10)  # nothing fits: every step taken, what decides kept
    assert trimmed[:2] == ["context.nodes", "context.pvcs"] and len(trimmed) <= len(TRIM_STEPS)
    assert fitted["observed"] == {"pod.crashlooping": True} and fitted["findings"][0]["summary"] == "s"
    assert json.loads(serialize(fitted))["alerts"] == [{"labels": {"alertname": "A"}}]


async def test_an_investigation_that_cannot_fit_the_window_ends_and_the_model_still_decides() -> None:
    from kubernaut.analysis.tools.builtin import ToolScope, default_registry
    from kubernaut.cluster.redaction import redactor
    from tests.support.tool_calling_llm import tool_llm

    # The tools' schemas alone are ~1,200 tokens: with them the prompt outgrows a 1,800-token window, without
    # them it fits. The investigation must end before asking (a refused request would read as "this model has
    # no tool calls", and auto mode would stop offering tools to it for good).
    for peer in tool_llm():
        peer.script(decision())
        cfg = AnalysisConfig(llm_provider="vllm", llm_base_url=peer.base_url, llm_model="small", llm_max_retries=0,
                             llm_tools="auto", llm_context_tokens=1800, llm_max_completion_tokens=300)
        llm = LLMAnalyzer(cfg, tools=default_registry(), tool_scope=lambda situation: ToolScope(
            situation=situation, cluster=None, redactor=redactor()))
        result = await Analyzer(cfg, RULES, CrashingWeb(rollout=False), llm).analyze(crashloop(), DEPLOY)
        assert result.engine == "llm:small", result.fallback_reason
        assert result.llm is not None and "filled small's 1800-token context" in (result.llm.investigation or "")
        (body,) = peer.requests
        assert "tools" not in body and request_chars(body) / CHARS_PER_TOKEN + body["max_tokens"] <= 1800
        assert llm.status()["tools"]["refused_by"] == {} and llm.status()["tools"]["enabled"] is True
