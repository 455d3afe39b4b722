"""Measured outcomes steer the choice: the rule engine's candidates re-ranked by what worked before.

The rules propose an action and its alternatives, each with the rule author's score. The intelligence
service turns past assessments of the same kind of incident (``"{first alert}:{target kind}"``) and of
similar incidents into an estimate per candidate, starting from that score as a prior. Then:

* the proposal stands while its estimate stays at or above ``learning_min_value`` and no alternative
  with a record of its own beats it clearly;
* an action that fell below (it was ineffective here before) is not chosen again: the best alternative
  above the line takes its place, or — with none — the incident goes to a human (``notify_only``) with
  the evidence, which is what an SRE does after a fix did not fix.

Learning only ever demotes to, or promotes among, actions the rules themselves consider; it never
invents a change. What moved the decision is written into ``reasoning`` and ``alternatives``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from kubernaut.analysis.facts import Situation
from kubernaut.analysis.rules import RuleOutcome, notify_reason
from kubernaut.config.settings import AnalysisConfig
from kubernaut.execution.catalog import CatalogError, get_action, validate_request
from kubernaut.models.analysis import Alternative, AnalysisResult
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of

logger = logging.getLogger(__name__)

# An alternative overtakes a proposal that still holds only with a clear margin and a record of its own:
# one lucky run of a restart must not beat the rule author's "raise memory for an OOM".
PROMOTION_MARGIN = 0.1
PROMOTION_MIN_CASES = 2


class Intelligence(Protocol):
    """What the analysis reads from the intelligence service (a DeploymentHandle adapter in production)."""

    async def ranking(self, signature: str, candidates: list[str], incident_id: int | None,
                      priors: dict[str, float], prior_cases: float) -> list[dict[str, Any]]: ...

    async def history(self, incident_id: int) -> list[str]: ...


class HandleIntelligence:
    """The intelligence deployment behind its handle."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def ranking(self, signature: str, candidates: list[str], incident_id: int | None,
                      priors: dict[str, float], prior_cases: float) -> list[dict[str, Any]]:
        return await self._handle.ranking.remote(signature, candidates, incident_id, priors, prior_cases)

    async def history(self, incident_id: int) -> list[str]:
        context = await self._handle.context_for.remote(incident_id)
        return list(context["summary"]) if context else []


def situation_signature(situation: Situation) -> str:
    """The learning signature of the situation's incident (kubernaut/models/signature.py)."""
    return signature_of([s.alertname for s in situation.signals], situation.incident_target.kind)


def _mutates(action: str) -> bool:
    try:
        return get_action(action).mutates
    except CatalogError:
        return False


def _as_alternative(action: str, situation: Situation,
                    preferred: ResourceRef) -> tuple[ResourceRef, dict[str, Any]] | None:
    """A valid (target, default parameters) for an alternative the rule named only by action: the proposal's
    target first, then the workload (a Deployment action proposed instead of a Pod one)."""
    targets = [preferred]
    workload = situation.context.workload_ref
    if workload is not None and workload not in targets:
        targets.append(workload)
    for target in targets:
        try:
            _, params = validate_request(action, target, {})
        except CatalogError:
            continue
        return target, params.model_dump(mode="json", exclude_none=True)
    return None


class Learner:
    def __init__(self, cfg: AnalysisConfig, intelligence: Intelligence) -> None:
        self.cfg = cfg
        self.intelligence = intelligence

    async def history(self, incident_id: int | None) -> list[str]:
        """What history says about this incident, one line per finding, for the prompt and for humans."""
        if incident_id is None:
            return []
        try:
            return await asyncio.wait_for(self.intelligence.history(incident_id), self.cfg.learning_time_budget_s)
        except Exception as exc:  # history is advisory: the decision goes on without it
            logger.warning("no history for incident %s: %s", incident_id, exc)
            return []

    async def rank(self, result: AnalysisResult, outcome: RuleOutcome, situation: Situation
                   ) -> tuple[AnalysisResult, set[str]]:
        """The decision after measured outcomes, and the actions evidence ruled out (for vetting the LLM)."""
        if not _mutates(result.action):
            return result, set()  # notify/diagnose: nothing to learn away from
        allowed = outcome.candidates
        alternatives = {a.action: a for a in result.alternatives
                        if a.action != result.action and a.action in allowed and _mutates(a.action)}
        priors = {result.action: result.confidence, **{name: a.score for name, a in alternatives.items()}}
        signature = situation_signature(situation)
        try:
            ranked = await asyncio.wait_for(
                self.intelligence.ranking(signature, list(priors), situation.incident_id, priors,
                                          self.cfg.learning_prior_cases),
                self.cfg.learning_time_budget_s)
        except Exception as exc:  # no evidence is not a reason to fail the analysis
            result.reasoning.append(f"learning: no evidence available ({type(exc).__name__}: {exc})"[:300])
            return result, set()
        by_action = {r["action"]: r for r in ranked}
        proposal = by_action.get(result.action)
        if proposal is None:
            return result, set()
        floor = self.cfg.learning_min_value
        demoted = {r["action"] for r in ranked if r["value"] < floor and _has_record(r)}
        if not _has_record(proposal) and not any(_has_record(r) for r in ranked):
            result.reasoning.append(f"learning: no assessed outcome yet for {signature}")
            return result, demoted
        result.reasoning.append(f"learning: {proposal['reason']} (estimate {proposal['value']:.2f})"[:400])

        challenger = next((r for r in ranked if r["action"] != result.action and r["value"] >= floor
                           and r["action"] not in demoted), None)
        keep = result.action not in demoted and not (
            challenger is not None and challenger["evidence"]["cases"] >= PROMOTION_MIN_CASES
            and challenger["value"] > proposal["value"] + PROMOTION_MARGIN)
        if keep:
            return result, demoted

        why = (f"{result.action} was ruled out by measured outcomes: {proposal['reason']}"
               if result.action in demoted else
               f"{challenger['action'] if challenger else '?'} has the better record: "
               f"{challenger['reason'] if challenger else ''}")[:400]
        moved = Alternative(action=result.action, reason=why[:300], score=round(min(proposal["value"], 1.0), 4))
        others = [a for a in result.alternatives if a.action != result.action]
        learned_id = f"{result.rule_id}+learned" if result.rule_id else "learned"
        for candidate in ranked:
            name = candidate["action"]
            if name == result.action or name in demoted or candidate["value"] < floor:
                continue
            built = _as_alternative(name, situation, result.target)
            if built is None:
                result.reasoning.append(f"learning: {name} has a good record but no valid target/parameters here")
                continue
            target, params = built
            return result.model_copy(update={
                "action": name, "target": target, "parameters": params,
                # The alternative is trusted as far as its record and never beyond the rule's own confidence.
                "confidence": round(min(result.confidence, candidate["value"]), 4),
                "rule_id": learned_id,
                "alternatives": [moved, *[a for a in others if a.action != name]],
                "reasoning": [*result.reasoning, f"learning: chose {name} instead: {candidate['reason']}"[:400]],
            }), demoted

        # Nothing the rules consider has a good enough record: a human decides, with the evidence.
        alertname = situation.firing[0].alertname if situation.firing else ""
        reason = notify_reason(f"{result.root_cause} Not done automatically: {why}", alertname)
        return result.model_copy(update={
            "action": "notify_only", "parameters": {"reason": reason},
            "rule_id": learned_id,
            "alternatives": [moved, *others],
            "reasoning": [*result.reasoning, "learning: no candidate with a good enough record: escalated to a human"],
        }), demoted


def _has_record(ranked: dict[str, Any]) -> bool:
    return bool(ranked["evidence"]["cases"] or ranked.get("similar_successes") or ranked.get("similar_failures"))
