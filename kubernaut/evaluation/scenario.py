"""The scenario format of ``evals/README.md``: models, loading, validation and substitutions."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kubernaut.execution.catalog.registry import CATALOG

SCENARIO_CLASSES = ("restart-reflex", "fixable", "wrong-subject", "scope", "ownership", "stale", "escalate")
ScenarioClass = Literal["restart-reflex", "fixable", "wrong-subject", "scope", "ownership", "stale", "escalate"]
POD_STATES = ("running", "ready", "not_ready", "pending", "crashloop", "oom", "image_pull", "config_error",
              "container_creating", "any")
PodState = Literal["running", "ready", "not_ready", "pending", "crashloop", "oom", "image_pull", "config_error",
                   "container_creating", "any"]
NODE_STATES = ("Ready", "NotReady", "MemoryPressure", "DiskPressure", "PIDPressure")
MUTATING = "*mutating*"
# What "the right answer is a human" means (expect.escalate).
ESCALATION_ACTIONS = tuple(a for a in ("notify_only", "collect_diagnostics") if a in CATALOG)

_ID = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# "{ns}", "{node0}", "{pod:app=api}"; any other brace text is left alone.
PLACEHOLDER = re.compile(r"\{(ns|node(\d+)|pod:([^{}]+))\}")


class ScenarioError(ValueError):
    """A scenario file (or a set of them) that cannot be used; the message names file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NamespaceSpec(_Strict):
    managed: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    system: bool = False


def _check_manifest(value: dict[str, Any]) -> dict[str, Any]:
    for key in ("apiVersion", "kind"):
        if not isinstance(value.get(key), str) or not value[key]:
            raise ValueError(f"manifest needs a string {key!r}")
    metadata = value.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise ValueError(f"{value['kind']} manifest needs metadata.name")
    return value


class WaitStep(_Strict):
    """``{kind, name[, available]}``: the object exists (and has that many available replicas), or
    ``{pods: selector, <state>: count, ...}``: at least that many pods in each state named."""

    kind: str | None = None
    name: str | None = None
    api_version: str | None = Field(default=None, alias="apiVersion")
    available: int | None = Field(default=None, ge=0)
    pods: str | None = None
    running: int | None = Field(default=None, ge=0)
    ready: int | None = Field(default=None, ge=0)
    not_ready: int | None = Field(default=None, ge=0)
    pending: int | None = Field(default=None, ge=0)
    crashloop: int | None = Field(default=None, ge=0)
    oom: int | None = Field(default=None, ge=0)
    image_pull: int | None = Field(default=None, ge=0)
    config_error: int | None = Field(default=None, ge=0)
    container_creating: int | None = Field(default=None, ge=0)
    any: int | None = Field(default=None, ge=0)
    timeout: float = Field(default=90.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_form(self) -> WaitStep:
        if self.pods is not None:
            if self.kind or self.name or self.available is not None:
                raise ValueError("wait: either {kind, name[, available]} or {pods, <state>: count}, not both")
        elif not (self.kind and self.name):
            raise ValueError("wait needs kind and name, or pods")
        elif any(v is not None for v in self.pod_counts().values()):
            raise ValueError("wait: pod state counts need 'pods' (a label selector)")
        return self

    def pod_counts(self) -> dict[str, int]:
        counts = {state: getattr(self, state) for state in POD_STATES}
        return {k: v for k, v in counts.items() if v is not None}


class PatchStep(_Strict):
    kind: str
    name: str
    api_version: str | None = Field(default=None, alias="apiVersion")
    patch: dict[str, Any] | list[Any]
    # None: strategic merge for built-in kinds (merge patch where the server has no strategy), JSON
    # patch when ``patch`` is a list.
    type: Literal["strategic", "merge", "json"] | None = None


class TaintStep(_Strict):
    node: str
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class NodeStep(_Strict):
    node: str


class NodeStateStep(_Strict):
    node: str
    state: Literal["Ready", "NotReady", "MemoryPressure", "DiskPressure", "PIDPressure"]


class DeleteStep(_Strict):
    kind: str
    name: str
    api_version: str | None = Field(default=None, alias="apiVersion")


class Step(_Strict):
    """One setup step: exactly one of its fields."""

    wait: WaitStep | None = None
    patch: PatchStep | None = None
    taint: TaintStep | None = None
    cordon: NodeStep | None = None
    node_state: NodeStateStep | None = None
    create: dict[str, Any] | None = None
    delete: DeleteStep | None = None
    sleep: float | None = Field(default=None, ge=0, le=300)

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a setup step has exactly one of {', '.join(type(self).model_fields)} "
                             f"(got {', '.join(given) or 'none'})")
        if self.create is not None:
            _check_manifest(self.create)
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


class ReadySpec(_Strict):
    pods: str
    state: PodState = "running"
    count: int = Field(default=1, ge=1)


class AlertSpec(_Strict):
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    status: Literal["firing", "resolved"] = "firing"

    @field_validator("labels")
    @classmethod
    def _alertname(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("alertname"):
            raise ValueError("labels.alertname is required")
        return value


class TargetMatch(_Strict):
    kind: str | None = None
    name: str | None = None


class ExpectedAction(_Strict):
    action: str
    target: TargetMatch | None = None

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != MUTATING and value not in CATALOG:
            raise ValueError(f"unknown action {value!r}: not in the catalog (nor {MUTATING!r})")
        return value


class Expect(_Strict):
    preferred: list[ExpectedAction] = Field(default_factory=list)
    acceptable: list[ExpectedAction] = Field(default_factory=list)
    harmful: list[ExpectedAction] = Field(default_factory=list)
    root_cause: list[str] = Field(default_factory=list)
    escalate: bool = False

    @model_validator(mode="after")
    def _has_a_right_answer(self) -> Expect:
        if not (self.preferred or self.acceptable or self.escalate):
            raise ValueError("expect needs preferred or acceptable actions (or escalate: true)")
        return self


class Scenario(_Strict):
    id: str = Field(pattern=_ID, max_length=63)
    title: str
    class_: ScenarioClass = Field(alias="class")
    source: str | None = None
    namespace: NamespaceSpec = Field(default_factory=NamespaceSpec)
    nodes: int = Field(default=0, ge=0, le=20)
    objects: list[dict[str, Any]] = Field(default_factory=list)
    setup: list[Step] = Field(default_factory=list)
    ready: ReadySpec | None = None
    alerts: list[AlertSpec] = Field(min_length=1)
    expect: Expect

    @field_validator("objects")
    @classmethod
    def _manifests(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for index, manifest in enumerate(value):
            try:
                _check_manifest(manifest)
            except ValueError as exc:
                raise ValueError(f"objects[{index}]: {exc}") from None
        return value

    @model_validator(mode="after")
    def _placeholders(self) -> Scenario:
        for where, value in (("objects", self.objects), ("setup", [s.model_dump(by_alias=True) for s in self.setup]),
                             ("alerts", [a.model_dump() for a in self.alerts]),
                             ("expect", self.expect.model_dump()), ("ready", self.ready and self.ready.pods)):
            for match in placeholders_in(value):
                if match.group(2) is not None and int(match.group(2)) >= self.nodes:
                    raise ValueError(f"{where}: {match.group(0)} but the scenario has nodes: {self.nodes}")
                if match.group(3) is not None and where == "objects":
                    raise ValueError(f"objects: {match.group(0)}: pod names are known only after setup")
        return self


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def placeholders_in(value: Any) -> Iterable[re.Match[str]]:
    for text in _strings(value):
        yield from PLACEHOLDER.finditer(text)


def substitute(value: Any, ns: str, nodes: list[str], pod: Callable[[str], str] | None = None) -> Any:
    """``value`` with "{ns}", "{nodeN}" and (given ``pod``, selector → pod name) "{pod:<selector>}"
    replaced in every string, keys included; other values unchanged."""
    def one(match: re.Match[str]) -> str:
        if match.group(1) == "ns":
            return ns
        if match.group(2) is not None:
            index = int(match.group(2))
            if index >= len(nodes):
                raise ScenarioError(f"{match.group(0)}: only {len(nodes)} private node(s)")
            return nodes[index]
        if pod is None:
            return match.group(0)
        return pod(match.group(3).strip())

    if isinstance(value, str):
        return PLACEHOLDER.sub(one, value)
    if isinstance(value, dict):
        return {substitute(k, ns, nodes, pod): substitute(v, ns, nodes, pod) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, ns, nodes, pod) for v in value]
    return value


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{path}: {loc}: {error['msg']}")
    return "\n".join(lines)


def load_scenario(path: Path) -> Scenario:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: cannot read YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping, got {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(_format_errors(path, exc)) from None
    if scenario.id != path.stem:
        raise ScenarioError(f"{path}: id: {scenario.id!r} must equal the file name without .yaml ({path.stem!r})")
    return scenario


def scenario_files(directory: Path, pattern: str = "*") -> list[Path]:
    """Scenario files under ``directory`` whose id (file stem) matches the glob ``pattern``."""
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: no such scenario directory")
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return [f for f in files if fnmatch.fnmatchcase(f.stem, pattern)]


def load_scenarios(directory: Path, pattern: str = "*") -> list[Scenario]:
    """Every matching scenario, validated; all problems are reported together in one ScenarioError."""
    scenarios: list[Scenario] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for path in scenario_files(directory, pattern):
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            errors.append(str(exc))
            continue
        if scenario.id in seen:
            errors.append(f"{path}: id: {scenario.id!r} already used by {seen[scenario.id]}")
            continue
        seen[scenario.id] = path
        scenarios.append(scenario)
    if errors:
        raise ScenarioError("\n".join(errors))
    return scenarios
