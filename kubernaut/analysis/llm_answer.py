"""The LLM's answer: a pydantic model, its JSON schema for structured output, and its validation.

The schema is built per incident: ``action`` is an enum of the actions allowed for this incident and
``target`` an enum of the in-scope objects, so a server that enforces the schema (OpenAI, vLLM,
llama-server) cannot even express an out-of-policy answer. Every answer is validated again anyway —
servers that only promise JSON (``json_object``, prompt-only) can say anything.

Parameters are ``[{name, value}]`` pairs with string values rather than a free-form object: OpenAI's
strict mode requires ``additionalProperties: false`` on every object, and the catalog's pydantic
models coerce ``"1.5"`` and ``"true"`` themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubernaut.execution.catalog import CatalogError, format_validation_error, get_action, validate_request
from kubernaut.models.analysis import Alternative, AnalysisResult
from kubernaut.models.resource import CLUSTER_SCOPED_KINDS, ResourceRef

SCHEMA_NAME = "remediation_decision"
ROOT_CAUSE_MAX = 240
REASON_MAX = 120
MAX_PARAMETERS = 3
MAX_ALTERNATIVES = 2


class DecisionParameter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=40)
    value: str = Field(max_length=2000)  # the catalog bounds each parameter; this only caps absurd answers


class DecisionAlternative(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=40)
    reason: str = Field(max_length=REASON_MAX * 2)


class Remediation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=60)
    target: str = Field(max_length=400, description="Kind/namespace/name, or Kind/name if cluster-scoped")
    parameters: list[DecisionParameter] = Field(default_factory=list, max_length=MAX_PARAMETERS * 2)


class LLMDecision(BaseModel):
    """Field order is the order a model writes them: diagnosis first, then the choice it supports."""

    model_config = ConfigDict(extra="forbid")

    root_cause: str = Field(min_length=1, max_length=ROOT_CAUSE_MAX * 2)
    remediation: Remediation
    # Asked as an integer percentage: grammar-constrained servers enforce integer bounds (not number
    # bounds), and small models write "85" more reliably than "0.85". A fraction is accepted too.
    confidence: int | float = Field(ge=0, le=100)
    alternatives: list[DecisionAlternative] = Field(default_factory=list, max_length=MAX_ALTERNATIVES * 2)


def target_string(ref: ResourceRef) -> str:
    return str(ref)


def parse_target(text: str) -> ResourceRef:
    parts = text.strip().split("/")
    if len(parts) == 3 and all(parts):
        return ResourceRef(kind=parts[0], namespace=parts[1], name=parts[2])
    if len(parts) == 2 and all(parts) and parts[0] in CLUSTER_SCOPED_KINDS:
        return ResourceRef(kind=parts[0], name=parts[1])
    raise ValueError("target must be 'Kind/namespace/name' (or 'Kind/name' for cluster-scoped kinds)")


# Parameter values travel as strings (strict mode wants one shape for every pair); these patterns keep a
# grammar-constrained model to values the catalog can parse. The catalog still validates ranges.
_INTEGER = r"^[0-9]{1,6}$"
_NUMBER = r"^[0-9]{1,3}(\.[0-9]{1,2})?$"


def value_schema(prop: dict[str, Any], defs: dict[str, Any], bounded: bool) -> dict[str, Any]:
    """A string schema for one catalog parameter, from its pydantic JSON schema."""
    if "$ref" in prop:
        prop = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if options:
        return value_schema(options[0], defs, bounded)
    if "enum" in prop or "const" in prop:
        return {"type": "string", "enum": [json.dumps(v) if not isinstance(v, str) else v
                                           for v in prop.get("enum", [prop.get("const")])]}
    kind = prop.get("type")
    if kind == "boolean":
        return {"type": "string", "enum": ["true", "false"]}
    if kind == "integer":
        return {"type": "string", "pattern": _INTEGER}
    if kind == "number":
        return {"type": "string", "pattern": _NUMBER}
    out: dict[str, Any] = {"type": "string"}
    if prop.get("pattern"):
        out["pattern"] = prop["pattern"]
    if bounded:
        out["maxLength"] = min(int(prop.get("maxLength", 60)), 120)
    return out


def json_schema(actions: Sequence[str], targets: Sequence[ResourceRef], *, bounded_strings: bool = True
                ) -> dict[str, Any]:
    """Strict-mode compatible: every property required, no additional properties anywhere.

    ``remediation`` is one branch per allowed action, each listing only the targets whose kind that
    action accepts and only that action's parameter names, so a schema-enforcing server cannot pair
    an action with a wrong kind or a foreign parameter. (The branches sit one level down because
    OpenAI's strict mode refuses ``anyOf`` at the root.) ``bounded_strings`` adds maxLength, which
    llama.cpp and vLLM enforce (keeping a small model from rambling) and OpenAI's strict mode rejects.
    """

    def text(limit: int) -> dict[str, Any]:
        return {"type": "string", "maxLength": limit} if bounded_strings else {"type": "string"}

    branches = []
    for name in actions:
        spec = get_action(name)
        fitting = [target_string(t) for t in targets if spec.any_kind or t.kind in spec.target_kinds]
        if not fitting:
            continue
        params_schema = spec.params.model_json_schema()
        items = [{
            "type": "object",
            "properties": {"name": {"type": "string", "enum": [param]},
                           "value": value_schema(prop, params_schema.get("$defs", {}), bounded_strings)},
            "required": ["name", "value"],
            "additionalProperties": False,
        } for param, prop in params_schema.get("properties", {}).items()]
        parameters: dict[str, Any] = {"type": "array", "maxItems": min(MAX_PARAMETERS, len(items))}
        if items:
            parameters["items"] = items[0] if len(items) == 1 else {"anyOf": items}
        else:
            parameters["items"] = {"type": "object", "properties": {}, "required": [],
                                   "additionalProperties": False}
        branches.append({
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": [name]},
                "target": {"type": "string", "enum": fitting},
                "parameters": parameters,
            },
            "required": ["action", "target", "parameters"],
            "additionalProperties": False,
        })
    return {
        "type": "object",
        "properties": {
            "root_cause": text(ROOT_CAUSE_MAX),
            "remediation": {"anyOf": branches} if len(branches) > 1 else branches[0],
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
            "alternatives": {
                "type": "array",
                "maxItems": MAX_ALTERNATIVES,
                "items": {
                    "type": "object",
                    "properties": {"action": {"type": "string", "enum": list(actions)}, "reason": text(REASON_MAX)},
                    "required": ["action", "reason"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["root_cause", "remediation", "confidence", "alternatives"],
        "additionalProperties": False,
    }


class DecisionRejected(ValueError):
    """An answer that cannot be used. ``flag`` marks answers that tried to leave the policy (catalog,
    scope, guards): possible prompt injection, recorded for review rather than only retried."""

    def __init__(self, message: str, *, flag: bool = False) -> None:
        super().__init__(message)
        self.flag = flag


def _value(text: str) -> Any:
    """"1.5" → 1.5, "true" → True, "512Mi" stays a string: the catalog model decides what fits."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text
    return value if isinstance(value, (int, float, bool)) or value is None else text


def _extract_json(text: str) -> Any:
    """The JSON object in an answer; tolerates code fences and prose around it (prompt-only mode)."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start == -1:
        raise DecisionRejected("the answer is not valid JSON: no object found")
    if end <= start:
        raise DecisionRejected("the answer is not valid JSON: the object is never closed (cut off?)")
    try:
        return json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise DecisionRejected(f"the answer is not valid JSON: {exc.msg} at position {exc.pos}") from None


def parse(text: str) -> LLMDecision:
    data = _extract_json(text)
    if not isinstance(data, dict):
        raise DecisionRejected("the answer must be a JSON object")
    try:
        return LLMDecision.model_validate(data)
    except ValidationError as exc:
        raise DecisionRejected(f"the answer does not match the schema: {format_validation_error(exc)}") from None


def confidence_fraction(value: int | float) -> float:
    """Integers are percentages (the schema asks for 0-100); a float up to 1 is already a fraction."""
    if isinstance(value, float) and value <= 1:
        return value
    return min(float(value) / 100, 1.0)


def to_result(decision: LLMDecision, *, engine: str, allowed_actions: Sequence[str],
              allowed_targets: Sequence[ResourceRef], forbidden: dict[str, str]) -> AnalysisResult:
    """Check one parsed answer against catalog, policy and scope; the result is ready to record."""
    choice = decision.remediation
    try:
        spec = get_action(choice.action)
    except CatalogError as exc:
        raise DecisionRejected(f"action: {exc}", flag=True) from None
    if spec.name in forbidden:
        raise DecisionRejected(f"action: {spec.name} is forbidden here: {forbidden[spec.name]}", flag=True)
    if spec.name not in allowed_actions:
        raise DecisionRejected(f"action: {spec.name} is not among the allowed actions {sorted(allowed_actions)}",
                               flag=True)
    try:
        target = parse_target(choice.target)
    except (ValueError, ValidationError) as exc:
        raise DecisionRejected(f"target: {exc}") from None
    if target not in allowed_targets:
        raise DecisionRejected(f"target: {target} is outside this incident's scope "
                               f"(allowed: {', '.join(map(str, allowed_targets[:8]))})", flag=True)
    raw_params = {p.name: _value(p.value) for p in choice.parameters}
    try:
        _, params = validate_request(spec.name, target, raw_params)
    except CatalogError as exc:
        accepted = ", ".join(spec.params.model_json_schema().get("properties", {})) or "none"
        raise DecisionRejected(f"{exc} ({spec.name} accepts parameters: {accepted})") from None
    alternatives = [
        Alternative(action=a.action, reason=a.reason[:REASON_MAX * 2], score=0.0)
        for a in decision.alternatives if a.action in allowed_actions and a.action != spec.name
    ][:MAX_ALTERNATIVES]
    return AnalysisResult(
        action=spec.name, parameters=params.model_dump(mode="json", exclude_none=True), target=target,
        confidence=confidence_fraction(decision.confidence), engine=engine,
        root_cause=decision.root_cause[: ROOT_CAUSE_MAX * 2],
        alternatives=alternatives,
    )
