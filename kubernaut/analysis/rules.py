"""Rule engine: a data file maps alerts to catalog actions. Used when no LLM is set or it fails."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from kubernaut.models.analysis import Alternative, AnalysisResult
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

TargetSelector = Literal["workload", "pod", "node", "pvc", "hpa", "job", "cronjob"]

# selector → (label, kind, namespaced)
_SELECTOR_LABELS: dict[str, tuple[str, str, bool]] = {
    "pod": ("pod", "Pod", True),
    "node": ("node", "Node", False),
    "pvc": ("persistentvolumeclaim", "PersistentVolumeClaim", True),
    "hpa": ("horizontalpodautoscaler", "HorizontalPodAutoscaler", True),
    "job": ("job_name", "Job", True),
    "cronjob": ("cronjob", "CronJob", True),
}

ENGINE = "rules"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    alerts: list[str] = Field(min_length=1)
    when: dict[str, str | list[str]] = Field(default_factory=dict)
    action: str
    target: TargetSelector = "workload"
    parameters: dict[str, Any] = Field(default_factory=dict)
    confidence: float = Field(ge=0, le=1)
    root_cause: str
    alternatives: list[Alternative] = Field(default_factory=list)


class DefaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    action: str
    confidence: float = Field(ge=0, le=1)
    root_cause: str


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    rules: list[Rule]
    default: DefaultRule


@lru_cache(maxsize=8)
def load_rules(path: Path | None = None) -> RuleSet:
    """Load and validate a rules file (the packaged one by default); errors name the bad field."""
    if path is None:
        text = resources.files("kubernaut.analysis").joinpath("rules.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return RuleSet.model_validate(yaml.safe_load(text))


_PLACEHOLDER = re.compile(r"\{(labels\.([A-Za-z_][A-Za-z0-9_]*)|target)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _as_data(value: str, limit: int = 253) -> str:
    """Alert text is untrusted: strip control characters and bound its length before it is shown."""
    cleaned = _CONTROL.sub(" ", value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def render(template: str, labels: dict[str, str], target: ResourceRef) -> str:
    """Fill ``{labels.X}`` and ``{target}`` by substitution only: nothing in a value is evaluated."""

    def substitute(match: re.Match[str]) -> str:
        if match[1] == "target":
            return str(target)
        return _as_data(labels.get(match[2], "?"))

    return _PLACEHOLDER.sub(substitute, template)


def _conditions_hold(rule: Rule, labels: dict[str, str]) -> bool:
    for key, expected in rule.when.items():
        value = labels.get(key)
        if expected == "*":
            if not value:
                return False
        elif isinstance(expected, list):
            if value not in expected:
                return False
        elif value != expected:
            return False
    return True


def _select_target(selector: str, labels: dict[str, str], incident_target: ResourceRef) -> ResourceRef | None:
    if selector == "workload":
        return incident_target
    label, kind, namespaced = _SELECTOR_LABELS[selector]
    name = labels.get(label)
    if not name:
        return incident_target if incident_target.kind == kind else None
    namespace = labels.get("namespace") if namespaced else None
    if namespaced and not namespace:
        return None
    return ResourceRef(kind=kind, name=name, namespace=namespace)


def decide(rules: RuleSet, signals: Sequence[Signal], incident_target: ResourceRef) -> AnalysisResult:
    """First rule (in file order) that matches a firing signal of the incident wins."""
    firing = [s for s in signals if s.status == "firing"] or list(signals)
    for rule in rules.rules:
        for signal in firing:
            if signal.alertname not in rule.alerts or not _conditions_hold(rule, signal.labels):
                continue
            target = _select_target(rule.target, signal.labels, incident_target)
            if target is None:
                continue
            return AnalysisResult(
                action=rule.action,
                parameters=dict(rule.parameters),
                target=target,
                confidence=rule.confidence,
                engine=ENGINE,
                root_cause=render(rule.root_cause, signal.labels, target),
                alternatives=list(rule.alternatives),
                rule_id=rule.id,
                reasoning=[f"rule {rule.id} matched alert {signal.alertname}"],
            )
    first = firing[0]
    why = f"no rule matched {sorted({s.alertname for s in firing})}"
    return default_decision(rules, first.labels, incident_target, why)


def default_decision(rules: RuleSet, labels: dict[str, str], target: ResourceRef, why: str) -> AnalysisResult:
    return AnalysisResult(
        action=rules.default.action,
        parameters={},
        target=target,
        confidence=rules.default.confidence,
        engine=ENGINE,
        root_cause=render(rules.default.root_cause, labels, target),
        rule_id=rules.default.id,
        reasoning=[why],
    )
