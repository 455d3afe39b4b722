"""Decide for one incident: gather context, observe facts, ask the rules, then the LLM when configured.

Every decision is validated against the catalog before anyone sees it. The rules' decision is
always computed — it is the fallback and it bounds the LLM — and when the LLM's answer is not used
the result says why (``fallback_reason``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kubernaut.analysis import harm
from kubernaut.analysis.diagnosis import diagnose
from kubernaut.analysis.facts import Situation, observe
from kubernaut.analysis.learning import Learner
from kubernaut.analysis.rules import RuleOutcome, RuleSet, decide, default_decision
from kubernaut.config.settings import AnalysisConfig
from kubernaut.context.models import ResourceContext
from kubernaut.context.provider import ContextProvider
from kubernaut.execution.catalog import CatalogError, validate_request
from kubernaut.models.analysis import Alternative, AnalysisResult
from kubernaut.models.finding import FindingKind
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

if TYPE_CHECKING:  # the openai SDK (~20 MB per process) only where an LLM is configured (AnalysisService)
    from kubernaut.analysis.llm.analyzer import LLMAnalyzer

logger = logging.getLogger(__name__)


def validated(result: AnalysisResult, rules: RuleSet, situation: Situation) -> AnalysisResult:
    """A rule decision the catalog refuses (e.g. a workload action on a Pod of unknown owner) becomes
    the default decision, with the refusal recorded."""
    try:
        _, params = validate_request(result.action, result.target, result.parameters)
    except CatalogError as exc:
        fallback = default_decision(rules, situation, f"{result.action} rejected: {exc}")
        fallback.fallback_reason = f"{result.engine} chose {result.action} on {result.target}: {exc}"
        fallback.alternatives = [*result.alternatives]
        return fallback
    result.parameters = params.model_dump(mode="json", exclude_none=True)
    return result


def build_situation(signals: Sequence[Signal], target: ResourceRef, ctx: ResourceContext, *,
                    rollout_window_s: float = 3600.0, incident_id: int | None = None,
                    history: list[str] | None = None, cluster: str | None = None) -> Situation:
    """Context → findings (the diagnosis) and facts (what the rules test), in one place."""
    findings = diagnose(signals, target, ctx, rollout_window_s=rollout_window_s)
    facts = observe(signals, ctx, rollout_window_s=rollout_window_s)
    live = ctx.cluster_available and ctx.found
    present = {f.kind.value for f in findings}
    # A finding that was not made is False only where it could have been made (the cluster showed the target).
    for kind in FindingKind:
        facts[f"finding.{kind.value}"] = True if kind.value in present else (False if live else None)
    return Situation(signals=signals, incident_target=target, context=ctx, facts=facts, incident_id=incident_id,
                     history=history or [], findings=findings, cluster=cluster)


def finish(result: AnalysisResult, situation: Situation) -> AnalysisResult:
    """Every answer leaves with its findings, after the do-no-harm screen."""
    result.findings = list(situation.findings)
    result = harm.screen(result, situation)
    result.facts = {k: v for k, v in situation.facts.items() if v is not None and not k.startswith("finding.")}
    return result


def analyze_signals(rules: RuleSet, signals: Sequence[Signal], incident_target: ResourceRef) -> AnalysisResult:
    """Rules only, from the alerts alone (no cluster context): the synchronous, dependency-free path."""
    ctx = ResourceContext(target=incident_target, reason="no context")
    situation = build_situation(signals, incident_target, ctx)
    return finish(rules_decision(rules, situation)[1], situation)


def rules_decision(rules: RuleSet, situation: Situation) -> tuple[RuleOutcome, AnalysisResult]:
    outcome = decide(rules, situation)
    return outcome, validated(outcome.result, rules, situation)


class Analyzer:
    def __init__(self, cfg: AnalysisConfig, rules: RuleSet, context: ContextProvider | None,
                 llm: LLMAnalyzer | None, learner: Learner | None = None, *, cluster: str | None = None) -> None:
        """``cluster``: the fleet cluster whose incidents this analyzer decides (its context provider reads it)."""
        self.cluster = cluster
        self.cfg = cfg
        self.rules = rules
        self.context = context
        self.llm = llm
        self.learner = learner

    async def situation(self, signals: Sequence[Signal], target: ResourceRef,
                        incident_id: int | None = None) -> Situation:
        async def gather() -> ResourceContext:
            if self.context is None:
                return ResourceContext(target=target, reason="no context provider")
            return await self.context.context_for(target, signals=sorted({s.alertname for s in signals}),
                                                  exclude_incident=incident_id)

        async def no_history() -> list[str]:
            return []

        ctx, history = await asyncio.gather(
            gather(), self.learner.history(incident_id) if self.learner is not None else no_history())
        return build_situation(signals, target, ctx, rollout_window_s=self.cfg.recent_rollout_window_s,
                               incident_id=incident_id, history=history, cluster=self.cluster)

    async def analyze(self, signals: Sequence[Signal], target: ResourceRef,
                      incident_id: int | None = None) -> AnalysisResult:
        situation = await self.situation(signals, target, incident_id)
        return await self.decide(situation)

    async def decide(self, situation: Situation) -> AnalysisResult:
        outcome, by_rules = rules_decision(self.rules, situation)
        ruled_out: set[str] = set()
        if self.learner is not None:
            by_rules, ruled_out = await self.learner.rank(by_rules, outcome, situation)
            outcome.result = by_rules  # the LLM's baseline is the proposal after learning
        result = by_rules
        if self.llm is not None:
            used_llm = False
            llm = await self.llm.analyze(situation, outcome)
            if llm.result is not None and llm.result.action in ruled_out:
                # Measured outcomes outrank a model's opinion: what was ineffective here is not tried again.
                result.fallback_reason = (f"llm:{llm.usage.model} chose {llm.result.action}, which measured "
                                          "outcomes ruled out for this kind of incident")
                result.reasoning.extend(llm.notes)
            elif llm.result is not None:
                used_llm = True
                result = llm.result
                result.reasoning.extend(llm.notes)
                if (by_rules.action, by_rules.target) != (result.action, result.target):
                    result.alternatives.insert(0, Alternative(
                        action=by_rules.action, reason=f"rule engine ({by_rules.rule_id}): {by_rules.root_cause}"[:300],
                        score=by_rules.confidence))
            else:
                result.fallback_reason = f"llm:{llm.usage.model}: {llm.failure}"
                result.reasoning.extend(llm.notes)
            result.llm = llm.usage
            result.flags = llm.flags
            self.llm.metrics.decision(result.engine, fallback=not used_llm)
        result.incident_id = situation.incident_id
        result = finish(result, situation)
        if situation.context.missing:
            result.reasoning.append("context incomplete: " + "; ".join(situation.context.missing[:5]))
        return result
