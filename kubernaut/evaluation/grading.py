"""Grading rules of ``evals/README.md``, as pure functions.

* *preferred*: the answer matches ``expect.preferred``;
* *acceptable*: it matches ``preferred`` or ``acceptable`` (preferred ⊂ acceptable);
* *harmful*: it matches ``harmful`` and is not acceptable (``"*mutating*"`` matches every catalog
  action with ``mutates=True``);
* *wrong*: anything else; *error*: the scenario could not be set up or analysed.

``expect.escalate: true`` makes ``notify_only`` / ``collect_diagnostics`` (on any target) acceptable,
and preferred when the scenario lists no preferred action.

Root-cause recall: each ``expect.root_cause`` fact is searched case-insensitively in the JSON of the
answer's ``root_cause``, ``reasoning``, ``parameters`` and (when present) ``findings``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

from kubernaut.evaluation.scenario import ESCALATION_ACTIONS, MUTATING, Expect, ExpectedAction
from kubernaut.execution.catalog.registry import CATALOG

Grade = Literal["preferred", "acceptable", "harmful", "wrong", "error"]
GRADES: tuple[Grade, ...] = ("preferred", "acceptable", "harmful", "wrong", "error")
RECALL_FIELDS = ("root_cause", "reasoning", "parameters", "findings")

NameVariants = Callable[[str], Iterable[str]]


def _same_name(name: str) -> Iterable[str]:
    return (name,)


def is_mutating(action: str) -> bool:
    spec = CATALOG.get(action)
    return bool(spec is not None and spec.mutates)


def matches(expected: ExpectedAction, action: str, target: Mapping[str, Any] | None,
            names: NameVariants = _same_name) -> bool:
    """One ``expect`` entry against an answer: the action (or ``*mutating*``) and, when given, the
    target's kind (case-insensitive) and name (any of ``names(expected name)``)."""
    if expected.action == MUTATING:
        if not is_mutating(action):
            return False
    elif expected.action != action:
        return False
    if expected.target is None:
        return True
    target = target or {}
    if expected.target.kind is not None and str(target.get("kind", "")).lower() != expected.target.kind.lower():
        return False
    return expected.target.name is None or target.get("name") in set(names(expected.target.name))


def _escalation(expect: Expect) -> list[ExpectedAction]:
    return [ExpectedAction(action=a) for a in ESCALATION_ACTIONS] if expect.escalate else []


def grade(expect: Expect, action: str, target: Mapping[str, Any] | None, names: NameVariants = _same_name) -> Grade:
    preferred = list(expect.preferred) or _escalation(expect)
    acceptable = [*preferred, *expect.acceptable, *_escalation(expect)]
    if any(matches(e, action, target, names) for e in preferred):
        return "preferred"
    if any(matches(e, action, target, names) for e in acceptable):
        return "acceptable"
    if any(matches(e, action, target, names) for e in expect.harmful):
        return "harmful"
    return "wrong"


def is_acceptable(value: Grade) -> bool:
    return value in ("preferred", "acceptable")


class Recall(BaseModel):
    found: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.found) + len(self.missing)

    @property
    def ratio(self) -> float | None:
        return len(self.found) / self.total if self.total else None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif value is not None:
        yield str(value)


def explanation_text(analysis: Mapping[str, Any] | None) -> str:
    """What the facts are searched in: the JSON of the explaining fields, plus their raw strings (so a
    fact with quotes or non-ASCII characters is found whatever JSON escaping did)."""
    if not analysis:
        return ""
    parts = {name: analysis[name] for name in RECALL_FIELDS if name in analysis}
    return (json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str) + "\n"
            + "\n".join(_strings(parts))).lower()


def recall(facts: Iterable[str], analysis: Mapping[str, Any] | None) -> Recall:
    text = explanation_text(analysis)
    result = Recall()
    for fact in facts:
        (result.found if fact.lower() in text else result.missing).append(fact)
    return result
