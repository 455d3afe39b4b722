"""The workflow decision (policy + blocking + autonomy → verdict) from typed records, without a database:
the packaged policy, the blocking rules on a target's recent outcomes and the autonomy gate's evidence."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubernaut.config.settings import OrchestrationConfig
from kubernaut.intelligence.models import ActionEvidence
from kubernaut.models.resource import ResourceRef
from kubernaut.models.stats import wilson_lower_bound
from kubernaut.orchestration import autonomy, blocking
from kubernaut.orchestration.autonomy import Evidence
from kubernaut.orchestration.blocking import Block
from kubernaut.orchestration.policy import PolicyInput, load_policy
from kubernaut.orchestration.verdict import Verdict, decide, policy_facts
from kubernaut.storage.workflows import IncidentFacts, OutcomeCounts, PastOutcome, Proposal

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)
POLICY = load_policy()


def proposal(action: str = "scale_deployment", kind: str = "Deployment", confidence: float = 0.9,
             engine: str = "rules", parameters: dict[str, Any] | None = None) -> Proposal:
    return Proposal(id=1, incident_id=1, engine=engine, action=action,
                    parameters={"replicas": 4} if parameters is None else parameters,
                    target=ResourceRef(kind=kind, name="api", namespace="shop"), confidence=confidence,
                    root_cause="too few replicas", reasoning=[])


def incident(environment: str = "staging") -> IncidentFacts:
    return IncidentFacts(id=1, environment=environment, priority="P2", severity="warning",
                         signals=["KubeHpaMaxedOut"], target_kind="Deployment")


def facts(environment: str = "staging", **kwargs: Any) -> PolicyInput:
    return policy_facts(proposal(**kwargs), incident(environment))


def evidence(sufficient: bool) -> Evidence:
    return autonomy.from_workflows("KubeHpaMaxedOut:Deployment", "scale_deployment",
                                   OutcomeCounts(successes=20 if sufficient else 0, cases=20), 5, 0.8)


COOLDOWN = Block(rule="cooldown", reason="scale_deployment ran at 11:59:00; cooldown 300s",
                 until=NOW + timedelta(seconds=240))
CHAIN = Block(rule="ineffective-chain", reason="the last 3 remediations of this target were ineffective: human review",
              until=None, review=True)


def test_allowed_with_sufficient_evidence_runs_unattended() -> None:
    verdict = decide(POLICY, facts(), block=None, evidence=evidence(True), dry_run=False, now=NOW)
    assert (verdict.outcome, verdict.policy, verdict.rule) == ("allow", "allow", "everything-else")
    assert verdict.autonomy is not None and verdict.autonomy.sufficient


def test_autonomy_without_enough_evidence_promotes_to_approval() -> None:
    weak = evidence(False)
    verdict = decide(POLICY, facts(), block=None, evidence=weak, dry_run=False, now=NOW)
    assert verdict.policy == "allow" and verdict.outcome == "require_approval"
    assert "not enough evidence to act unattended" in verdict.reason and "0/20 verified successes" in verdict.reason
    assert verdict.autonomy == weak


def test_missing_evidence_fails_closed() -> None:
    verdict = decide(POLICY, facts(), block=None, evidence=None, dry_run=False, now=NOW)
    assert verdict.outcome == "require_approval" and "no evidence was measured" in verdict.reason


def test_read_only_actions_need_neither_evidence_nor_a_clear_target() -> None:
    verdict = decide(POLICY, facts(action="notify_only", parameters={}), block=COOLDOWN, evidence=None,
                     dry_run=False, now=NOW)
    assert verdict.outcome == "allow" and verdict.block is None and verdict.autonomy is None


def test_policy_requires_approval_and_evidence_does_not_lift_it() -> None:
    verdict = decide(POLICY, facts("production", confidence=0.75), block=None, evidence=evidence(True),
                     dry_run=False, now=NOW)
    assert (verdict.outcome, verdict.rule) == ("require_approval", "production-below-0.8")
    assert verdict.autonomy is None


def test_unknown_environment_is_judged_as_production() -> None:
    verdict = decide(POLICY, facts("unknown", confidence=0.75), block=None, evidence=evidence(True),
                     dry_run=False, now=NOW)
    assert verdict.outcome == "require_approval" and verdict.rule == "production-below-0.8"
    assert "judged as production" in verdict.reason
    relaxed = decide(POLICY, facts("unknown", confidence=0.75), block=None, evidence=evidence(True),
                     dry_run=False, unknown_environment="staging", now=NOW)
    assert relaxed.outcome == "allow"


def test_low_confidence_goes_to_review_and_a_block_does_not_change_it() -> None:
    verdict = decide(POLICY, facts(confidence=0.5), block=COOLDOWN, evidence=evidence(True), dry_run=False, now=NOW)
    assert (verdict.outcome, verdict.policy) == ("review", "review") and verdict.block is None


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_a_block_stops_allowed_and_approval_bound_actions(environment: str) -> None:
    verdict = decide(POLICY, facts(environment, confidence=0.75), block=COOLDOWN, evidence=evidence(True),
                     dry_run=False, now=NOW)
    assert verdict.outcome == "blocked" and verdict.block == COOLDOWN
    assert verdict.reason == f"cooldown: {COOLDOWN.reason} (until 2026-03-04 12:04:00 UTC)"
    assert verdict.autonomy is None


def test_a_block_that_needs_a_human_becomes_review() -> None:
    verdict = decide(POLICY, facts(), block=CHAIN, evidence=evidence(True), dry_run=False, now=NOW)
    assert verdict.outcome == "review" and verdict.reason == f"ineffective-chain: {CHAIN.reason}"


def test_a_dry_run_is_not_blocked() -> None:
    verdict = decide(POLICY, facts(), block=COOLDOWN, evidence=evidence(True), dry_run=True, now=NOW)
    assert verdict.outcome == "allow" and verdict.block is None


def test_the_recorded_detail_round_trips() -> None:
    verdict = decide(POLICY, facts(), block=COOLDOWN, evidence=evidence(True), dry_run=False, now=NOW)
    detail = verdict.detail()
    assert set(detail) == {"outcome", "reason", "rule", "policy", "facts", "block"}
    assert detail["facts"]["namespace"] == "shop" and detail["block"]["until"] == "2026-03-04T12:04:00Z"
    assert Verdict.model_validate(detail) == verdict


def past(action: str, phase: str, minutes_ago: float, **parameters: Any) -> PastOutcome:
    return PastOutcome(workflow_id=1, phase=phase, finished_at=NOW - timedelta(minutes=minutes_ago), action=action,
                       parameters=parameters)


def test_blocking_rules_on_recent_outcomes() -> None:
    cfg = OrchestrationConfig(cooldown_s=300, failure_block_after=2, ineffective_chain=3)
    assert blocking.check(cfg, [], "scale_deployment", {"replicas": 4}, NOW) is None
    cooldown = blocking.check(cfg, [past("scale_deployment", "completed", 1, replicas=4)], "scale_deployment",
                              {"replicas": 4}, NOW)
    assert cooldown is not None and cooldown.rule == "cooldown" and cooldown.until == NOW + timedelta(minutes=4)
    failures = [past("rollout_restart", "failed", 1), past("rollout_restart", "rolled_back", 2)]
    streak = blocking.check(cfg, failures, "rollout_restart", {}, NOW)
    assert streak is not None and streak.rule == "consecutive-failures" and "failed 2 times" in streak.reason
    chain = [past("rollout_restart", "failed", 1), past("scale_deployment", "timed_out", 2),
             past("delete_pod", "failed", 3)]
    ineffective = blocking.check(cfg, chain, "restart_pod", {}, NOW)
    assert ineffective is not None and ineffective.review and ineffective.until is None
    relaxed = OrchestrationConfig(cooldown_s=0)
    swings = [past("scale_deployment", "completed", 1, replicas=2),
              past("scale_deployment", "completed", 2, replicas=5)]
    oscillation = blocking.check(relaxed, swings, "scale_deployment", {"replicas": 5}, NOW)
    assert oscillation is not None and oscillation.rule == "oscillation"
    assert blocking.check(relaxed, swings, "scale_deployment", {"replicas": 1}, NOW) is None


def test_autonomy_prefers_assessments_and_needs_both_cases_and_bound() -> None:
    measured = ActionEvidence(signature="s", action="a", successes=4, cases=4, lower_bound=wilson_lower_bound(4, 4),
                              explanation="a for s: 4/4 effective")
    assert not autonomy.from_assessments(measured, 5, 0.5).sufficient  # too few cases
    assert not autonomy.from_assessments(measured, 3, 0.8).sufficient  # bound 0.51 too low
    enough = autonomy.from_assessments(measured, 3, 0.5)
    assert enough.sufficient and "needs ≥ 0.50 on ≥ 3 cases" in enough.explanation
    none = autonomy.from_workflows("s", "a", OutcomeCounts(successes=0, cases=0), 0, 0)
    assert none.sufficient and none.lower_bound == 0.0  # thresholds of zero: the operator's choice
