"""Decide for one incident: the rule engine today, the LLM (with this as fallback) when configured.

Every decision is validated against the catalog before anyone sees it: an action that is not in
the catalog, parameters that do not validate or a target of the wrong kind become ``notify_only``
with the reason recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubernaut.analysis.rules import RuleSet, decide, default_decision
from kubernaut.execution.catalog import CatalogError, validate_request
from kubernaut.models.analysis import AnalysisResult
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal


def validated(result: AnalysisResult, rules: RuleSet, labels: dict[str, str], incident_target: ResourceRef
              ) -> AnalysisResult:
    try:
        _, params = validate_request(result.action, result.target, result.parameters)
    except CatalogError as exc:
        fallback = default_decision(rules, labels, incident_target, f"{result.action} rejected: {exc}")
        fallback.fallback_reason = f"{result.engine} chose {result.action} on {result.target}: {exc}"
        fallback.alternatives = [*result.alternatives]
        return fallback
    result.parameters = params.model_dump(mode="json", exclude_none=True)
    return result


def analyze_signals(rules: RuleSet, signals: Sequence[Signal], incident_target: ResourceRef) -> AnalysisResult:
    decision = decide(rules, signals, incident_target)
    labels = next((s.labels for s in signals if s.status == "firing"), signals[0].labels)
    return validated(decision, rules, labels, incident_target)
