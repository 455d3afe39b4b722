"""An incident whose environment is unknown is judged by production rules unless configured otherwise
(orchestration.unknown_environment), with the packaged policy."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kubernaut.config.settings import KubernautConfig
from kubernaut.orchestration.policy import PolicyInput, evaluate, load_policy
from kubernaut.processing.classification import classify_environment

BASE: dict[str, Any] = dict(priority="P3", severity="warning", risk="medium", target_kind="Deployment",
                            action="rollout_restart", namespace="payments", engine="rules", mutates=True,
                            sensitive=False, confidence=0.75)


def facts(**overrides: Any) -> PolicyInput:
    return PolicyInput(**{**BASE, **overrides})


def test_an_unlabelled_namespace_is_unknown() -> None:
    # How the processor derives the environment the orchestrator hands to the policy.
    assert classify_environment("payments", {})[0] == "unknown"


def test_unknown_environment_gets_production_rules_by_default() -> None:
    policy = load_policy()
    production = evaluate(policy, facts(environment="production"))
    unknown = evaluate(policy, facts(environment="unknown"))
    assert production.decision == unknown.decision == "require_approval"
    assert unknown.rule == production.rule == "production-below-0.8"
    assert "environment unknown: judged as production" in unknown.reason
    assert "orchestration.unknown_environment" in unknown.reason
    # The LLM rule of production applies too, even with high confidence.
    assert evaluate(policy, facts(environment="unknown", confidence=0.95, engine="llm:x")).decision \
        == "require_approval"
    # A known non-production environment is not affected.
    assert evaluate(policy, facts(environment="staging")).decision == "allow"


def test_the_default_is_configurable() -> None:
    policy = load_policy()
    assert KubernautConfig().orchestration.unknown_environment == "production"
    config = KubernautConfig(orchestration={"unknown_environment": "staging"})
    verdict = evaluate(policy, facts(environment="unknown"),
                       unknown_environment=config.orchestration.unknown_environment)
    assert verdict.decision == "allow" and "judged as staging" in verdict.reason
    # "unknown" keeps unknown as its own environment (only rules naming it apply).
    assert evaluate(policy, facts(environment="unknown"), unknown_environment="unknown").decision == "allow"
    with pytest.raises(ValidationError, match="unknown_environment"):
        KubernautConfig(orchestration={"unknown_environment": "Prod uction"})
