"""Measured outcomes steer the rule engine's choice (real PostgreSQL, the real feedback queries):
an action that was ineffective for this kind of incident is not chosen again — the next good
alternative is, or a human is asked with the evidence — and a good record keeps the choice."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import asyncpg
import pytest

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.facts import Situation
from kubernaut.analysis.learning import Learner
from kubernaut.analysis.rules import load_rules
from kubernaut.config.settings import AnalysisConfig
from kubernaut.context.models import ResourceContext, WorkloadSummary
from kubernaut.intelligence import feedback
from kubernaut.models.finding import Finding, FindingKind
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from tests.support.incident_history import OOM_FACTS, connect, seed_action, seed_assessment, seed_incident

pytestmark = pytest.mark.integration

RULES = load_rules()
NOW = datetime.now(timezone.utc)
WEB = ResourceRef(kind="Deployment", name="web", namespace="shop")


class PoolIntelligence:
    """The intelligence deployment's two feedback calls, straight on the pool (no Serve in this test)."""

    def __init__(self, pool: asyncpg.Pool, *, fail: bool = False) -> None:
        self.pool = pool
        self.fail = fail

    async def ranking(self, signature: str, candidates: list[str], incident_id: int | None,
                      priors: dict[str, float], prior_cases: float) -> list[dict[str, Any]]:
        if self.fail:
            raise ConnectionError("intelligence replica unavailable")
        ranked = await feedback.ranking(self.pool, signature, candidates, incident_id=incident_id, priors=priors,
                                        prior_cases=prior_cases)
        return [r.model_dump(mode="json") for r in ranked]

    async def history(self, incident_id: int) -> list[str]:
        context = await feedback.context_for(self.pool, incident_id)
        return context.summary if context else []


def crashloop(**labels: str) -> Signal:
    all_labels = {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "web-5f6d7c-xyz12",
                  "container": "app", **labels}
    return Signal(alert_id=1, alertname="KubePodCrashLooping", status="firing", labels=all_labels,
                  starts_at=NOW, am_fingerprint="f", namespace="shop")


def situation(facts: dict[str, Any], incident_id: int | None = None) -> Situation:
    ctx = ResourceContext(target=WEB, cluster_available=True, found=True,
                          workload=WorkloadSummary(kind="Deployment", name="web", namespace="shop", replicas=2))
    # The diagnosis behind the facts: what lets the chosen actions through the do-no-harm screen.
    if facts.get("pods.oom_killed"):
        findings = [Finding(kind=FindingKind.OOM_KILLED, summary="web is OOMKilled at its limit", cause=WEB)]
    else:
        findings = [Finding(kind=FindingKind.CRASH, summary="web exits with code 1", cause=WEB),
                    Finding(kind=FindingKind.ROLLOUT_SUSPECT, summary="web's rollout changed its image", cause=WEB)]
    return Situation(signals=[crashloop()], incident_target=WEB, context=ctx, facts=dict(facts),
                     incident_id=incident_id, findings=findings)


def analyzer(pool: asyncpg.Pool) -> Analyzer:
    config = AnalysisConfig()
    return Analyzer(config, RULES, None, None, Learner(config, PoolIntelligence(pool)))


async def past(pool: asyncpg.Pool, action: str, verdict: str, *, name: str = "web") -> None:
    incident = await seed_incident(pool, signals=["KubePodCrashLooping"], name=name, facts=OOM_FACTS)
    await seed_assessment(pool, await seed_action(pool, incident, action), verdict)


async def test_without_history_the_rules_decide_and_say_so(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        result = await analyzer(db.pool).decide(situation(OOM_FACTS))
        assert (result.action, result.rule_id) == ("increase_memory_limits", "crashloop-oom")
        assert any("no assessed outcome yet for KubePodCrashLooping:Deployment" in r for r in result.reasoning)
    finally:
        await db.close()


async def test_an_ineffective_memory_increase_is_not_repeated_the_incident_goes_to_a_human(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        await past(db.pool, "increase_memory_limits", "ineffective")
        result = await analyzer(db.pool).decide(situation(OOM_FACTS))
        # Raising memory did not stop the OOMs (a leak?): no rollback (guard), no restart (its score is low):
        # a human gets the diagnosis and the evidence.
        assert result.action == "notify_only" and result.rule_id == "crashloop-oom+learned"
        assert result.alternatives[0].action == "increase_memory_limits"
        assert "ruled out by measured outcomes" in result.alternatives[0].reason
        assert "0/1 effective" in result.parameters["reason"]
        assert any(r.startswith("learning: increase_memory_limits for KubePodCrashLooping:Deployment: 0/1")
                   for r in result.reasoning)
        assert any("escalated to a human" in r for r in result.reasoning)
    finally:
        await db.close()


async def test_an_ineffective_restart_moves_to_the_next_alternative_on_the_workload(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        await past(db.pool, "restart_pod", "ineffective", name="other")
        facts = {"pods.crashlooping": True, "pods.restarts": 5, "pods.oom_killed": False}
        result = await analyzer(db.pool).decide(situation(facts))
        # The crashloop rule proposes restart_pod; it failed for this kind of incident, so its next
        # alternative (rollback_deployment, a Deployment action) is chosen on the workload.
        assert result.action == "rollback_deployment" and result.target == WEB
        assert result.rule_id == "crashloop+learned"
        assert result.confidence <= 0.5  # never more sure than the record: the policy sends it to review
        assert result.alternatives[0].action == "restart_pod"
    finally:
        await db.close()


async def test_a_good_record_keeps_the_choice(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        await past(db.pool, "increase_memory_limits", "effective")
        await past(db.pool, "increase_memory_limits", "ineffective", name="api")
        await past(db.pool, "increase_memory_limits", "effective", name="cart")
        result = await analyzer(db.pool).decide(situation(OOM_FACTS))
        assert result.action == "increase_memory_limits" and result.rule_id == "crashloop-oom"
        assert any("2/3 effective" in r for r in result.reasoning)
    finally:
        await db.close()


async def test_a_much_better_record_of_an_alternative_promotes_it(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        # Restarts failed three times; rollbacks worked three times: rollback is chosen over restart.
        for i in range(3):
            await past(db.pool, "restart_pod", "ineffective", name=f"a{i}")
            await past(db.pool, "rollback_deployment", "effective", name=f"b{i}")
        facts = {"pods.crashlooping": True, "pods.oom_killed": False}
        result = await analyzer(db.pool).decide(situation(facts))
        assert result.action == "rollback_deployment"
        assert any("chose rollback_deployment instead: rollback_deployment for KubePodCrashLooping:Deployment: 3/3"
                   in r for r in result.reasoning)
    finally:
        await db.close()


async def test_history_reaches_the_situation_for_the_prompt(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        await past(db.pool, "rollout_restart", "ineffective")
        current = await seed_incident(db.pool, signals=["KubePodCrashLooping"], facts=OOM_FACTS, status="open")
        engine = analyzer(db.pool)
        found = await engine.situation([crashloop()], WEB, current)
        assert any("rollout_restart was ineffective" in line for line in found.history)
    finally:
        await db.close()


async def test_no_evidence_available_leaves_the_rules_decision(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        config = AnalysisConfig()
        engine = Analyzer(config, RULES, None, None, Learner(config, PoolIntelligence(db.pool, fail=True)))
        result = await engine.decide(situation(OOM_FACTS))
        assert result.action == "increase_memory_limits"
        assert any("learning: no evidence available (ConnectionError" in r for r in result.reasoning)
    finally:
        await db.close()
