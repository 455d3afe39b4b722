"""The global LLM token budget (issue 19, item 4) on real PostgreSQL: two analyzers (two replicas) share
one budget; beyond it, or with the budget store unreachable, the rules decide and the analysis says why."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx2
import pytest
from openai import AsyncOpenAI

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.llm.analyzer import LLMAnalyzer
from kubernaut.config.settings import AnalysisConfig, StorageConfig
from kubernaut.storage import llm_budget
from kubernaut.storage.database import Database
from tests.support.llm_provider import DEPLOY, RULES, CrashingWeb, Provider, crashloop, decision

pytestmark = pytest.mark.integration


def replica(provider: Provider, pool: asyncpg.Pool | None, **limits: int) -> Analyzer:
    cfg = AnalysisConfig(llm_provider="vllm", llm_base_url="http://llm.test/v1", llm_model="small",
                         llm_max_retries=0, **limits)
    client = AsyncOpenAI(base_url=cfg.llm_base_url, api_key="k", max_retries=0,
                         http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(provider)))
    return Analyzer(cfg, RULES, CrashingWeb(rollout=False), LLMAnalyzer(cfg, client=client, budget_pool=pool))  # type: ignore[arg-type]


async def test_two_replicas_share_one_budget_per_minute(fresh_dsn: str) -> None:
    first_db = await Database.connect(StorageConfig(dsn=fresh_dsn))
    second_db = await Database.connect(StorageConfig(dsn=fresh_dsn))
    try:
        # Each answer costs 560 tokens (500 prompt + 60 completion) but a call starts only when its worst case
        # fits: its prompt estimate (~1,100 tokens here) + the minimum completion. 2,000 per minute pays for
        # two calls; after them 880 are left, less than a third call's worst case.
        seconds = await first_db.pool.fetchval("SELECT extract(second FROM now())")
        if seconds > 50:  # the three calls must fall in one minute window
            await asyncio.sleep(61 - float(seconds))
        provider = Provider({"small": [decision(confidence=90) for _ in range(4)]})
        one = replica(provider, first_db.pool, llm_tokens_per_minute=2000)
        two = replica(provider, second_db.pool, llm_tokens_per_minute=2000)
        results = [await one.analyze(crashloop(), DEPLOY), await two.analyze(crashloop(), DEPLOY)]
        assert [r.engine for r in results] == ["llm:small", "llm:small"]
        # Reservations were settled to what was really used, across both replicas.
        assert (await llm_budget.usage(first_db.pool)).minute == 2 * 560
        third = await one.analyze(crashloop(), DEPLOY)
        assert third.engine == "rules" and len(provider.requests) == 2
        assert "global LLM budget exhausted (1120 of 2000 tokens this minute used" in third.fallback_reason
        fourth = await two.analyze(crashloop(), DEPLOY)
        assert fourth.engine == "rules" and "global LLM budget exhausted" in fourth.fallback_reason
        # Unlimited (the default) is not charged nor refused.
        free = replica(Provider({"small": [decision(confidence=90)]}), first_db.pool)
        assert (await free.analyze(crashloop(), DEPLOY)).engine == "llm:small"
        assert (await llm_budget.usage(first_db.pool)).minute == 2 * 560
    finally:
        await first_db.close()
        await second_db.close()


async def test_concurrent_replicas_never_overshoot_the_daily_budget(fresh_dsn: str) -> None:
    dbs = [await Database.connect(StorageConfig(dsn=fresh_dsn)) for _ in range(2)]
    try:
        provider = Provider({"small": [decision(confidence=90) for _ in range(20)]})
        replicas = [replica(provider, db.pool, llm_tokens_per_day=3000) for db in dbs]
        results = await asyncio.gather(*(replicas[i % 2].analyze(crashloop(), DEPLOY) for i in range(10)))
        used = await llm_budget.usage(dbs[0].pool)
        # Worst cases are reserved under row locks: whatever the interleaving, the day's total stays within 3,000.
        assert used.day <= 3000 and used.day == 560 * len(provider.requests)
        assert sum(r.engine == "llm:small" for r in results) == len(provider.requests) >= 1
        refused = [r for r in results if r.engine == "rules"]
        assert refused and all("global LLM budget exhausted" in (r.fallback_reason or "") and "today" in
                               (r.fallback_reason or "") for r in refused)
    finally:
        for db in dbs:
            await db.close()


async def test_budget_store_unreachable_fails_closed(fresh_dsn: str) -> None:
    db = await Database.connect(StorageConfig(dsn=fresh_dsn))
    provider = Provider({"small": [decision(confidence=90)]})
    engine = replica(provider, db.pool, llm_tokens_per_minute=100_000)
    await db.close()  # the store goes away under a running analyzer
    result = await engine.analyze(crashloop(), DEPLOY)
    assert result.engine == "rules" and provider.requests == []
    assert "global LLM budget store unreachable" in (result.fallback_reason or "")
    # A budget configured without any store is refused the same way.
    missing = await replica(provider, None, llm_tokens_per_day=100_000).analyze(crashloop(), DEPLOY)
    assert missing.engine == "rules" and "global LLM budget store unreachable" in (missing.fallback_reason or "")
