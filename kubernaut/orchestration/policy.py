"""The declarative remediation policy: deny / review / require approval / allow, with the rule that decided."""

from __future__ import annotations

from datetime import datetime, time, timezone
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, field_validator

Decision = Literal["deny", "review", "require_approval", "allow"]
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(default_factory=lambda: list(_DAYS))
    start: time = time(0, 0)
    end: time = time(23, 59, 59)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)  # raises a clear error for an unknown zone
        return value

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        if _DAYS[local.weekday()] not in self.days:
            return False
        now = local.time()
        if self.start <= self.end:
            return self.start <= now <= self.end
        return now >= self.start or now <= self.end  # window across midnight


class Conditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: list[str] = Field(default_factory=list)
    priority: list[str] = Field(default_factory=list)
    severity: list[str] = Field(default_factory=list)
    risk: list[str] = Field(default_factory=list)
    target_kind: list[str] = Field(default_factory=list)
    action: list[str] = Field(default_factory=list)
    namespace: list[str] = Field(default_factory=list)
    engine: list[Literal["rules", "llm"]] = Field(default_factory=list)
    cluster: list[str] = Field(default_factory=list)  # the incident's cluster (fleet), shell wildcards
    mutates: bool | None = None
    sensitive: bool | None = None
    min_confidence: float | None = Field(default=None, ge=0, le=1)
    max_confidence: float | None = Field(default=None, ge=0, le=1)
    windows: list[TimeWindow] | None = None
    # The action's parameters (validated, defaults included), so a rule can tell scaling to 0 from scaling to 4:
    # ``parameters``: {name: [values]} holds when each named parameter is one of its values (strings accept
    # shell wildcards; true is not 1); ``parameters_above``: {name: bound} when each is a number above its bound.
    parameters: dict[str, list[StrictBool | StrictInt | StrictFloat | StrictStr]] = Field(default_factory=dict)
    parameters_above: dict[str, float] = Field(default_factory=dict)


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    when: Conditions = Field(default_factory=Conditions)
    decision: Decision
    reason: str = ""


GitOpsMode = Literal["live", "propose", "live-and-propose"]


class GitOpsConditions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: list[str] = Field(default_factory=list)
    action: list[str] = Field(default_factory=list)
    namespace: list[str] = Field(default_factory=list)
    tool: list[Literal["argocd", "flux", "helm"]] = Field(default_factory=list)


class GitOpsModeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    when: GitOpsConditions = Field(default_factory=GitOpsConditions)
    mode: GitOpsMode


def _default_gitops_rules() -> list[GitOpsModeRule]:
    return [GitOpsModeRule(name="gitops-production-propose", when=GitOpsConditions(environment=["production"]),
                           mode="propose"),
            GitOpsModeRule(name="gitops-elsewhere-live-and-propose", mode="live-and-propose")]


class GitOpsPolicy(BaseModel):
    """How a spec-changing action on a GitOps-managed target is carried out (kubernaut/orchestration/gitops_mode.py).

    ``fallback_mode`` applies when the change cannot be made in Git (no repository configured for the owner,
    manifest not found): ``approval`` (a live change, only with a human's approval), ``escalate`` (nothing is
    changed, a human is told) or ``live``."""

    model_config = ConfigDict(extra="forbid")

    rules: list[GitOpsModeRule] = Field(default_factory=_default_gitops_rules)
    fallback_mode: Literal["approval", "escalate", "live"] = "approval"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    rules: list[PolicyRule]
    gitops: GitOpsPolicy = Field(default_factory=GitOpsPolicy)


class PolicyInput(BaseModel):
    """What the policy sees about one proposed action."""

    environment: str
    priority: str
    severity: str
    risk: str
    target_kind: str
    action: str
    namespace: str | None
    engine: str
    mutates: bool
    sensitive: bool
    confidence: float
    parameters: dict[str, Any] = Field(default_factory=dict)
    cluster: str | None = None


class PolicyVerdict(BaseModel):
    decision: Decision
    rule: str
    reason: str


def _any(patterns: list[str], value: str | None) -> bool:
    return any(fnmatchcase(value or "", p) for p in patterns)


def _is_value(expected: object, value: object) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool) and expected == value
    if isinstance(expected, str):
        return isinstance(value, str) and fnmatchcase(value, expected)
    return isinstance(value, int | float) and value == expected


def _above(value: object, bound: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > bound


def _holds(when: Conditions, facts: PolicyInput, now: datetime) -> bool:
    engine = "llm" if facts.engine.startswith("llm") else "rules"
    checks = [
        not when.environment or _any(when.environment, facts.environment),
        not when.priority or _any(when.priority, facts.priority),
        not when.severity or _any(when.severity, facts.severity),
        not when.risk or _any(when.risk, facts.risk),
        not when.target_kind or _any(when.target_kind, facts.target_kind),
        not when.action or _any(when.action, facts.action),
        not when.namespace or _any(when.namespace, facts.namespace),
        not when.engine or engine in when.engine,
        not when.cluster or _any(when.cluster, facts.cluster),
        when.mutates is None or when.mutates == facts.mutates,
        when.sensitive is None or when.sensitive == facts.sensitive,
        when.min_confidence is None or facts.confidence >= when.min_confidence,
        when.max_confidence is None or facts.confidence < when.max_confidence,
        # An empty window list never holds: a rule for windows only applies once some are configured.
        when.windows is None or any(w.contains(now) for w in when.windows),
        all(any(_is_value(v, facts.parameters.get(name)) for v in values) for name, values in when.parameters.items()),
        all(_above(facts.parameters.get(name), bound) for name, bound in when.parameters_above.items()),
    ]
    return all(checks)


UNKNOWN_ENVIRONMENT = "unknown"


def evaluate(policy: Policy, facts: PolicyInput, now: datetime | None = None, *,
             unknown_environment: str = "production") -> PolicyVerdict:
    """The first rule that holds decides. An incident whose environment is unknown is judged as
    ``unknown_environment`` (orchestration.unknown_environment): production by default, so a missing
    label never lifts production's safeguards."""
    moment = now or datetime.now(timezone.utc)
    note = ""
    if facts.environment == UNKNOWN_ENVIRONMENT and unknown_environment != UNKNOWN_ENVIRONMENT:
        facts = facts.model_copy(update={"environment": unknown_environment})
        note = (f" (environment unknown: judged as {unknown_environment}, orchestration.unknown_environment; "
                "label the namespace kubernaut.ai/environment to say otherwise)")
    for rule in policy.rules:
        if _holds(rule.when, facts, moment):
            return PolicyVerdict(decision=rule.decision, rule=rule.name, reason=(rule.reason or rule.name) + note)
    return PolicyVerdict(decision="require_approval", rule="default", reason="no policy rule matched" + note)


@lru_cache(maxsize=8)
def load_policy(path: Path | None = None) -> Policy:
    """The packaged policy, or a user's file; a bad file fails at start-up naming the field."""
    if path is None:
        text = resources.files("kubernaut.orchestration").joinpath("policy.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return Policy.model_validate(yaml.safe_load(text))
