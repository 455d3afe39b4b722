"""Rule engine: declarative YAML rules map alerts *and observed conditions* to catalog actions.

It decides when no LLM is configured, it is the fallback whenever the LLM fails, and it bounds what
the LLM may choose (its candidates and guards). Files: users' rule files first (a user rule with a
packaged rule's id replaces it), then the packaged ``rules.yaml``; the first matching rule wins.
Guards from every file always apply: a user file can add guards but not remove the packaged ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubernaut.analysis.facts import FactValue, Situation
from kubernaut.analysis.runbooks import runbook
from kubernaut.execution.catalog import CatalogError, get_action
from kubernaut.models.analysis import Alternative, AnalysisResult
from kubernaut.models.finding import Finding, FindingKind
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

TargetSelector = Literal["workload", "incident", "pod", "node", "pvc", "hpa", "job", "cronjob", "namespace", "cause"]
Condition = bool | int | float | str | list[bool | int | float | str]

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
# Always acceptable, whatever the rules say: they change nothing in the cluster.
READ_ONLY_ACTIONS = frozenset({"collect_diagnostics", "notify_only"})


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    alerts: list[str] = Field(min_length=1, description='alert names; ["*"]: any alert (with `finding`)')
    description: str | None = None
    finding: FindingKind | None = Field(default=None, description="the finding that must hold and justifies the rule")
    when: dict[str, str | list[str]] = Field(default_factory=dict, description="alert label conditions")
    facts: dict[str, Condition] = Field(default_factory=dict, description="observed conditions, all must hold")
    unless: dict[str, Condition] = Field(default_factory=dict, description="any of these holding vetoes the rule")
    action: str
    target: TargetSelector = "workload"
    parameters: dict[str, Any] = Field(default_factory=dict)
    confidence: float = Field(ge=0, le=1)
    root_cause: str
    alternatives: list[Alternative] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_actions(self) -> Rule:
        if "*" in self.alerts and self.finding is None:
            raise ValueError(f"rule {self.id}: alerts [\"*\"] needs a `finding` to match on")
        if self.target == "cause" and self.finding is None:
            raise ValueError(f"rule {self.id}: target `cause` needs a `finding` (whose cause object is the target)")
        # A typo in a rules file must fail at start-up, not silently become notify_only at 3 a.m.
        for name in [self.action, *(a.action for a in self.alternatives)]:
            try:
                get_action(name)
            except CatalogError as exc:
                raise ValueError(f"rule {self.id}: {exc}") from None
        return self


class Guard(BaseModel):
    """A veto: while its conditions hold, the listed actions are not chosen by the rules nor the LLM."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    when: dict[str, str | list[str]] = Field(default_factory=dict)
    facts: dict[str, Condition] = Field(default_factory=dict)
    forbid: list[str] = Field(min_length=1)
    # None: try the next rule. An action (notify_only): decide that instead, keeping the rule's diagnosis.
    instead: str | None = None
    reason: str

    @model_validator(mode="after")
    def _known_actions(self) -> Guard:
        for name in [*self.forbid, *([self.instead] if self.instead else [])]:
            try:
                get_action(name)
            except CatalogError as exc:
                raise ValueError(f"guard {self.id}: {exc}") from None
        return self


class DefaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    action: str
    confidence: float = Field(ge=0, le=1)
    root_cause: str


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2]
    rules: list[Rule] = Field(default_factory=list)
    guards: list[Guard] = Field(default_factory=list)
    default: DefaultRule | None = None


class RuleSet(BaseModel):
    """The merged, validated rules in evaluation order."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule]
    guards: list[Guard]
    default: DefaultRule
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} appears twice")
            seen.add(rule.id)
        return self


class RulesError(ValueError):
    """A rules file is unreadable or invalid; the message names the file and the field."""


def _read(text: str, source: str) -> RuleFile:
    try:
        return RuleFile.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise RulesError(f"{source}: {exc}") from None


def packaged_rules() -> RuleFile:
    text = resources.files("kubernaut.analysis").joinpath("rules.yaml").read_text(encoding="utf-8")
    return _read(text, "packaged rules.yaml")


def merge(user_files: Sequence[tuple[str, RuleFile]], packaged: RuleFile) -> RuleSet:
    rules: list[Rule] = []
    guards: list[Guard] = []
    default = packaged.default
    user_ids: set[str] = set()
    for _, file in user_files:
        for rule in file.rules:
            if rule.id in user_ids:
                raise RulesError(f"rule id {rule.id!r} defined in two user rule files")
            user_ids.add(rule.id)
            rules.append(rule)
        guards.extend(file.guards)
        if file.default is not None and default is packaged.default:
            default = file.default
    rules.extend(r for r in packaged.rules if r.id not in user_ids)
    guards.extend(packaged.guards)
    if default is None:
        raise RulesError("no default rule: the packaged rules.yaml must define one")
    return RuleSet(rules=rules, guards=guards, default=default,
                   sources=[name for name, _ in user_files] + ["packaged"])


@lru_cache(maxsize=8)
def load_rules(*paths: Path) -> RuleSet:
    """User rule files (in order) merged before the packaged rules; errors name the file and field."""
    user = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError(f"{path}: {exc}") from None
        user.append((str(path), _read(text, str(path))))
    return merge(user, packaged_rules())


# -- templates -------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{(labels\.([A-Za-z_][A-Za-z0-9_]*)|target|workload|fact\.([a-z_.]+)|finding)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _as_data(value: str, limit: int = 253) -> str:
    """Alert text is untrusted: strip control characters and bound its length before it is shown."""
    cleaned = _CONTROL.sub(" ", value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def render(template: str, labels: dict[str, str], target: ResourceRef, workload: ResourceRef | None = None,
           facts: dict[str, FactValue] | None = None, finding: Finding | None = None) -> str:
    """Fill ``{labels.X}``, ``{target}``, ``{workload}``, ``{fact.X}``, ``{finding}`` by substitution only:
    nothing is evaluated."""

    def substitute(match: re.Match[str]) -> str:
        if match[1] == "finding":
            if finding is None:
                return "?"
            # The first piece of evidence (quoted, clipped) goes with the finding: what a human checks first.
            return finding.summary + (f" Evidence: {finding.evidence[0]}" if finding.evidence else "")
        if match[1] == "target":
            return str(target)
        if match[1] == "workload":
            return str(workload or target)
        if match[3]:
            return _as_data(str((facts or {}).get(match[3], "?")))
        return _as_data(labels.get(match[2], "?"))

    return _PLACEHOLDER.sub(substitute, template)


def _parameters(template: dict[str, Any], labels: dict[str, str], finding: Finding | None = None) -> dict[str, Any]:
    """``"{labels.container}"`` parameters take the label's value, ``"{finding.key}"`` a datum of the rule's
    finding; absent values drop the parameter (the action's default applies) rather than sending a
    placeholder to validation."""
    out: dict[str, Any] = {}
    data = finding.data if finding is not None else {}
    for key, value in template.items():
        if isinstance(value, str):
            match = re.fullmatch(r"\{(labels|finding)\.([A-Za-z_][A-Za-z0-9_]*)\}", value)
            if match:
                found = labels.get(match[2]) if match[1] == "labels" else data.get(match[2])
                if found not in (None, ""):
                    out[key] = found
                continue
        out[key] = value
    return out


# -- conditions -------------------------------------------------------------------------------------

def _label_conditions_hold(conditions: dict[str, str | list[str]], labels: dict[str, str]) -> bool:
    for key, expected in conditions.items():
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


def _fact_holds(value: FactValue, expected: Condition) -> bool:
    if value is None:
        return False  # unobserved never satisfies a condition
    if expected == "*":
        return bool(value)
    if isinstance(expected, list):
        return value in expected
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    return value == expected


def _facts_hold(conditions: dict[str, Condition], facts: dict[str, FactValue]) -> bool:
    return all(_fact_holds(facts.get(name), expected) for name, expected in conditions.items())


def _vetoed(conditions: dict[str, Condition], facts: dict[str, FactValue]) -> bool:
    return any(_fact_holds(facts.get(name), expected) for name, expected in conditions.items())


def rule_applies(rule: Rule, signal: Signal, facts: dict[str, FactValue]) -> bool:
    return ((signal.alertname in rule.alerts or "*" in rule.alerts)
            and (rule.finding is None or facts.get(f"finding.{rule.finding.value}") is True)
            and _label_conditions_hold(rule.when, signal.labels)
            and _facts_hold(rule.facts, facts) and not _vetoed(rule.unless, facts))


def active_guards(rules: RuleSet, situation: Situation) -> list[Guard]:
    return [g for g in rules.guards
            if _facts_hold(g.facts, situation.facts)
            and any(_label_conditions_hold(g.when, s.labels) for s in situation.firing)]


# -- targets ----------------------------------------------------------------------------------------

def select_target(selector: str, labels: dict[str, str], situation: Situation,
                  finding: Finding | None = None) -> ResourceRef | None:
    incident_target = situation.incident_target
    if selector == "cause":
        return finding.cause if finding is not None else None
    if selector == "incident":
        return incident_target
    if selector == "workload":
        return situation.workload
    if selector == "namespace":
        ns = incident_target.namespace or (incident_target.name if incident_target.kind == "Namespace" else None)
        return ResourceRef(kind="Namespace", name=ns) if ns else None
    label, kind, namespaced = _SELECTOR_LABELS[selector]
    name = labels.get(label)
    namespace = labels.get("namespace") if namespaced else None
    if name and (not namespaced or namespace):
        return ResourceRef(kind=kind, name=name, namespace=namespace)
    if incident_target.kind == kind:
        return incident_target
    ctx = situation.context
    ns = incident_target.namespace
    if ns is None:
        return None
    # No label names it: take it from the cluster (the worst pod first, the workload's HPA / claim).
    if selector == "pod" and ctx.pods:
        return ResourceRef(kind="Pod", name=ctx.pods[0].name, namespace=ns)
    if selector == "hpa" and ctx.hpa is not None:
        return ResourceRef(kind="HorizontalPodAutoscaler", name=ctx.hpa.name, namespace=ns)
    if selector == "pvc" and len(ctx.pvcs) == 1:
        return ResourceRef(kind="PersistentVolumeClaim", name=ctx.pvcs[0].name, namespace=ns)
    return None


# -- decision ---------------------------------------------------------------------------------------

@dataclass
class RuleOutcome:
    """The rules' decision, plus what bounds an LLM: candidate actions and the guards in force."""

    result: AnalysisResult
    candidates: set[str] = field(default_factory=set)
    guards: list[Guard] = field(default_factory=list)

    def forbidden(self, action: str) -> Guard | None:
        return next((g for g in self.guards if action in g.forbid), None)


def decide(rules: RuleSet, situation: Situation) -> RuleOutcome:
    """First rule (in order) that applies to a firing signal and is not vetoed by a guard wins."""
    guards = active_guards(rules, situation)
    forbidden = {name: g for g in guards for name in g.forbid}
    decision: AnalysisResult | None = None
    candidates: set[str] = set(READ_ONLY_ACTIONS)
    skipped: list[str] = []
    for rule in rules.rules:
        for signal in situation.firing:
            if not rule_applies(rule, signal, situation.facts):
                continue
            finding = situation.finding(rule.finding) if rule.finding is not None else None
            target = select_target(rule.target, signal.labels, situation, finding)
            if target is None:
                skipped.append(f"rule {rule.id} matched {signal.alertname} but names no {rule.target} target")
                continue
            candidates.update(a.action for a in rule.alternatives)
            candidates.add(rule.action)
            if decision is not None:
                break
            guard = forbidden.get(rule.action)
            if guard is not None and guard.instead is None:
                skipped.append(f"rule {rule.id} skipped: guard {guard.id}: {guard.reason}")
                break
            decision = _from_rule(rule, signal, target, situation, guard, skipped, finding)
            break
    candidates.difference_update(forbidden)
    candidates.update(READ_ONLY_ACTIONS)
    if decision is None:
        why = "; ".join(skipped) or f"no rule matched {sorted({s.alertname for s in situation.firing})}"
        decision = default_decision(rules, situation, why)
    return RuleOutcome(result=decision, candidates=candidates, guards=guards)


def _from_rule(rule: Rule, signal: Signal, target: ResourceRef, situation: Situation, guard: Guard | None,
               skipped: list[str], finding: Finding | None = None) -> AnalysisResult:
    root_cause = render(rule.root_cause, signal.labels, target, situation.workload, situation.facts, finding)
    reasoning = [*skipped, f"rule {rule.id} matched alert {signal.alertname}"]
    if finding is not None:
        reasoning.append(f"finding {finding.kind.value}: {finding.summary}")
        reasoning.extend(f"evidence: {e}" for e in finding.evidence[:3])
    if rule.facts:
        reasoning.append("observed: " + ", ".join(f"{k}={situation.facts.get(k)}" for k in sorted(rule.facts)))
    guidance = runbook(signal.alertname)
    if guidance is not None and guidance.runbook_url:
        reasoning.append(f"runbook: {guidance.runbook_url}")
    if guard is None:
        parameters = _parameters(rule.parameters, signal.labels, finding)
        if rule.action == "notify_only" and "reason" not in parameters:
            parameters["reason"] = notify_reason(root_cause, signal.alertname)
        return AnalysisResult(
            action=rule.action, parameters=parameters, target=target,
            confidence=rule.confidence, engine=ENGINE, root_cause=root_cause, alternatives=list(rule.alternatives),
            rule_id=rule.id, reasoning=reasoning,
        )
    # The guard keeps the diagnosis and turns the action into a recommendation for a human.
    instead = guard.instead or "notify_only"
    reason = f"{root_cause} Recommended: {rule.action} on {target}, but {guard.reason}"
    return AnalysisResult(
        action=instead, parameters={"reason": notify_reason(reason, signal.alertname)} if instead == "notify_only"
        else {},
        target=target,
        confidence=rule.confidence, engine=ENGINE, root_cause=root_cause,
        alternatives=[Alternative(action=rule.action, reason=f"blocked by guard {guard.id}", score=rule.confidence),
                      *rule.alternatives],
        rule_id=f"{rule.id}+{guard.id}", reasoning=[*reasoning, f"guard {guard.id}: {guard.reason}"],
    )


def notify_reason(root_cause: str, alertname: str) -> str:
    """What the human who gets a notify_only should read: the diagnosis, then the runbook's advice."""
    guidance = runbook(alertname)
    parts = [root_cause]
    if guidance is not None:
        if guidance.mitigation:
            parts.append("Mitigation: " + "; ".join(guidance.mitigation[:3]))
        if guidance.runbook_url:
            parts.append(f"Runbook: {guidance.runbook_url}")
    return " ".join(parts)[:2000]


def default_decision(rules: RuleSet, situation: Situation, why: str) -> AnalysisResult:
    labels = situation.labels
    target = situation.incident_target
    root_cause = render(rules.default.root_cause, labels, target, situation.workload, situation.facts)
    parameters = {"reason": notify_reason(root_cause, labels.get("alertname", ""))} \
        if rules.default.action == "notify_only" else {}
    return AnalysisResult(
        action=rules.default.action, parameters=parameters, target=target, confidence=rules.default.confidence,
        engine=ENGINE, root_cause=root_cause, rule_id=rules.default.id, reasoning=[why],
    )
