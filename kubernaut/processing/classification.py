"""Environment, normalized severity and priority, each with the rule that decided it."""

from __future__ import annotations

import re

from kubernaut.models.signal import Classification, Environment, Priority, Severity

_SEVERITY_ALIASES: dict[str, Severity] = {
    "critical": "critical", "crit": "critical", "sev1": "critical", "p0": "critical", "page": "critical",
    "emergency": "critical", "fatal": "critical",
    "high": "high", "sev2": "high", "p1": "high", "error": "high", "major": "high",
    "warning": "warning", "warn": "warning", "medium": "warning", "sev3": "warning", "p2": "warning",
    "minor": "warning",
    "info": "info", "informational": "info", "low": "info", "sev4": "info", "p3": "info", "none": "info",
    "notice": "info",
}

# Namespace labels consulted first (an explicit declaration beats a naming convention).
ENVIRONMENT_LABELS = ("kubernaut.ai/environment", "environment", "env")

_ENV_WORDS: list[tuple[re.Pattern[str], Environment]] = [
    (re.compile(r"(^|[-_.])(prod|production|prd|live)($|[-_.])"), "production"),
    (re.compile(r"(^|[-_.])(staging|stage|stg|preprod|uat)($|[-_.])"), "staging"),
    (re.compile(r"(^|[-_.])(dev|develop|development|sandbox)($|[-_.])"), "development"),
    (re.compile(r"(^|[-_.])(test|testing|qa|ci)($|[-_.])"), "test"),
]


def normalize_severity(raw: str | None) -> tuple[Severity, str]:
    if not raw:
        return "unknown", "no severity label"
    value = raw.strip().lower()
    if value in _SEVERITY_ALIASES:
        return _SEVERITY_ALIASES[value], f"severity label {raw!r} → {_SEVERITY_ALIASES[value]}"
    return "unknown", f"unrecognized severity label {raw[:64]!r}"


def _environment_from_word(value: str) -> Environment | None:
    lowered = value.lower()
    for pattern, env in _ENV_WORDS:
        if pattern.search(lowered):
            return env
    return None


def classify_environment(namespace: str | None, namespace_labels: dict[str, str] | None) -> tuple[Environment, str]:
    for key in ENVIRONMENT_LABELS:
        value = (namespace_labels or {}).get(key)
        if value:
            env = _environment_from_word(value)
            if env:
                return env, f"namespace label {key}={value}"
    if namespace:
        env = _environment_from_word(namespace)
        if env:
            return env, f"namespace name {namespace!r}"
    return "unknown", "no environment label and namespace name gives no hint"


def priority_for(environment: Environment, severity: Severity) -> tuple[Priority, str]:
    if environment == "production" and severity == "critical":
        return "P0", "production x critical"
    if environment == "production" and severity == "high":
        return "P1", "production x high"
    if environment == "staging" and severity == "critical":
        return "P1", "staging x critical"
    if environment == "production":
        return "P2", f"production x {severity}"
    if environment == "staging":
        return "P2", f"staging x {severity}"
    return "P3", f"{environment} x {severity}"


def classify(
    namespace: str | None, namespace_labels: dict[str, str] | None, raw_severity: str | None
) -> Classification:
    environment, env_rule = classify_environment(namespace, namespace_labels)
    severity, sev_rule = normalize_severity(raw_severity)
    priority, prio_rule = priority_for(environment, severity)
    return Classification(
        environment=environment, environment_rule=env_rule,
        severity=severity, severity_rule=sev_rule,
        priority=priority, priority_rule=prio_rule,
    )


SEVERITY_RANK: dict[str, int] = {"unknown": 0, "info": 1, "warning": 2, "high": 3, "critical": 4}
