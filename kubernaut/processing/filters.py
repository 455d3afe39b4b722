"""Filter rules from config: which alerts are processed. The decision is recorded with the alert."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from kubernaut.config.settings import FilterRule, ProcessingConfig
from kubernaut.models.signal import Signal


def load_filters(config: ProcessingConfig) -> list[FilterRule]:
    rules = list(config.filters)
    if config.filters_file is not None:
        document = yaml.safe_load(Path(config.filters_file).read_text(encoding="utf-8")) or []
        rules.extend(TypeAdapter(list[FilterRule]).validate_python(document))
    return rules


def _conditions(rule: FilterRule, signal: Signal, severity: str) -> list[bool]:
    checks: list[bool] = []
    for key, pattern in rule.labels.items():
        checks.append(fnmatchcase(signal.labels.get(key, ""), pattern) if key in signal.labels else pattern == "")
    for key, pattern in rule.annotations.items():
        checks.append(key in signal.annotations and fnmatchcase(signal.annotations[key], pattern))
    if rule.severity:
        checks.append(any(fnmatchcase(severity, s) or fnmatchcase(signal.raw_severity or "", s)
                          for s in rule.severity))
    if rule.namespaces:
        checks.append(any(fnmatchcase(signal.namespace or "", ns) for ns in rule.namespaces))
    return checks


def decide(rules: list[FilterRule], signal: Signal, severity: str) -> tuple[bool, str]:
    """(process?, why). First matching rule wins; no match → processed."""
    for rule in rules:
        checks = _conditions(rule, signal, severity)
        matched = all(checks) if rule.mode == "all" else any(checks)
        if matched:
            return rule.action == "process", f"filter {rule.name!r} ({rule.action})"
    return True, "no filter matched"
