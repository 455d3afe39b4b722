"""The approval page's override form, generated from the action's parameter schema (the catalog's JSON
schema), and the override read back from the submitted form.

Only what the approver changed is an override (the orchestrator merges it over the proposed parameters and
judges the result again: policy, blocking, a fresh dry-run). A value that does not fit its field's type is a
400 naming the field; the schema itself is checked by the orchestrator, never trusted from the form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

FIELD_PREFIX = "override."


@dataclass(frozen=True)
class OverrideField:
    name: str
    kind: str  # integer, number, boolean, enum, string, json
    label: str
    help: str
    value: str  # the proposed value, as the form shows it
    choices: tuple[str, ...] = ()

    @property
    def input_name(self) -> str:
        return FIELD_PREFIX + self.name


class BadOverride(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _kind(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "enum"
    types = [spec.get("type")] + [s.get("type") for s in spec.get("anyOf", []) if isinstance(s, dict)]
    for kind in ("integer", "number", "boolean", "string"):
        if kind in types:
            return kind
    return "json"


def _shown(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "json":
        return json.dumps(value, sort_keys=True)
    if kind == "boolean":
        return "true" if value else "false"
    return str(value)


def fields(schema: dict[str, Any] | None, proposed: dict[str, Any]) -> list[OverrideField]:
    out = []
    for name, spec in ((schema or {}).get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        kind = _kind(spec)
        current = proposed.get(name, spec.get("default"))
        choices = tuple(str(c) for c in spec.get("enum", ())) if kind == "enum" else ()
        out.append(OverrideField(name=name, kind=kind, label=str(spec.get("title") or name),
                                 help=str(spec.get("description") or ""), value=_shown(current, kind),
                                 choices=choices))
    return out


def _parse(field: OverrideField, raw: str) -> Any:
    try:
        if field.kind == "integer":
            return int(raw)
        if field.kind == "number":
            return float(raw)
        if field.kind == "boolean":
            if raw not in ("true", "false"):
                raise ValueError("true or false")
            return raw == "true"
        if field.kind == "json":
            return json.loads(raw)
    except ValueError as exc:
        raise BadOverride(field.name, f"not a valid {field.kind} ({exc})") from None
    if field.kind == "enum" and raw not in field.choices:
        raise BadOverride(field.name, f"one of {', '.join(field.choices)}")
    return raw


def override_from_form(form: dict[str, str], schema: dict[str, Any] | None, proposed: dict[str, Any]
                       ) -> dict[str, Any] | None:
    """The parameters the approver changed; None when the form proposes the plan as it is."""
    known = {f.name: f for f in fields(schema, proposed)}
    unknown = [k[len(FIELD_PREFIX):] for k in form if k.startswith(FIELD_PREFIX) and k[len(FIELD_PREFIX):] not in known]
    if unknown:
        raise BadOverride(unknown[0], "not a parameter of this action")
    changed: dict[str, Any] = {}
    for name, field in known.items():
        raw = form.get(field.input_name)
        if raw is None or raw.strip() == field.value.strip() or (raw.strip() == "" and field.value == ""):
            continue
        value = _parse(field, raw.strip())
        if value != proposed.get(name):
            changed[name] = value
    return changed or None
