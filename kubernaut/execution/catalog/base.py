"""Building blocks of the typed action catalog.

The catalog is the only vocabulary the rule engine and the LLM may use to ask for a change in the
cluster (architecture principle 2). Everything here is therefore written for hostile input: the
parameters and targets usually originate in alert labels or LLM output, so every string is bounded,
control characters are refused, and Kubernetes names are checked against the API server's own
grammar before anything downstream formats them into a request or a log line.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from kubernaut.models.finding import FindingKind
from kubernaut.models.resource import ResourceRef

# --------------------------------------------------------------------------------------------------
# Errors


class CatalogError(ValueError):
    """A request the catalog refuses; a ValueError so callers that already map ValueError to 4xx/422
    (the gateway, the analysis validator) need no special case."""


class UnknownActionError(CatalogError):
    """The action name is not in the catalog; carries suggestions so an LLM repair prompt or an
    operator can correct a typo instead of guessing."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown action {safe_repr(name)}{hint} (the catalog is listed at GET /api/v1/actions)")


# --------------------------------------------------------------------------------------------------
# Untrusted-string hygiene

# Bidirectional overrides reorder text on screen ("trojan source"), so an approver could read
# something other than what would be executed; refuse them together with the Cc control characters.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _bad_char(ch: str, allow: str) -> bool:
    return ch not in allow and (unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS)


def safe_repr(value: object, limit: int = 80) -> str:
    """repr() bounded in length, for echoing untrusted input in error messages without letting
    it flood logs or smuggle terminal escapes (repr escapes control characters)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reject_controls(allow: str = "") -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and any(_bad_char(ch, allow) for ch in value):
            raise ValueError("must not contain control or bidirectional-override characters")
        return value

    return check


def reject_whitespace(value: Any) -> Any:
    """Runs before the pattern so the message says what is wrong instead of quoting a regex."""
    value = reject_controls()(value)
    if isinstance(value, str) and any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    return value


# Grammars of the Kubernetes API server (apimachinery validation), so a value that passes here is
# not rejected later by the API server halfway through a multi-step action.
DNS_LABEL_RE = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
DNS_SUBDOMAIN_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY_RE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_RE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
# Kubernetes resource.Quantity, unsigned: limits and sizes are never negative.
QUANTITY_RE = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$"
# Label-selector syntax (`a=b,c!=d,e in (f,g),!h`) as a character allow-list: it cannot carry anything
# but a selector into the LIST query string.
LABEL_SELECTOR_RE = r"^[A-Za-z0-9._/=!,() -]{1,256}$"
PERCENT_RE = r"^(100|[1-9]?[0-9])%$"
KIND_RE = r"^[A-Z][A-Za-z0-9]{0,62}$"

# Free text (reasons shown to humans): newlines and tabs are legitimate there, nothing else is.
SafeText = Annotated[str, BeforeValidator(reject_controls(allow="\n\t"))]
DnsLabel = Annotated[str, StringConstraints(max_length=63, pattern=DNS_LABEL_RE), BeforeValidator(reject_whitespace)]
LabelKey = Annotated[str, StringConstraints(max_length=317, pattern=LABEL_KEY_RE), BeforeValidator(reject_whitespace)]
LabelSelector = Annotated[
    str,
    StringConstraints(min_length=1, max_length=256, pattern=LABEL_SELECTOR_RE),
    BeforeValidator(reject_controls()),
    Field(examples=["app=web,tier!=cache", "app in (a,b),!legacy"]),
]
LabelValue = Annotated[
    str, StringConstraints(max_length=63, pattern=LABEL_VALUE_RE), BeforeValidator(reject_whitespace)
]
Quantity = Annotated[
    str,
    StringConstraints(max_length=32, pattern=QUANTITY_RE),
    BeforeValidator(reject_whitespace),
    Field(examples=["512Mi", "2Gi", "500m", "1.5"]),
]


def _int_or_percent(value: Any) -> Any:
    """One clear message instead of one per union member; digit strings become ints because
    YAML and LLMs write "1" as often as 1."""
    if isinstance(value, bool):
        raise ValueError("must be a non-negative integer or a percentage such as '25%'")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        reject_whitespace(value)
        if value.isascii() and value.isdigit() and len(value) <= 6:
            return int(value)
        if re.fullmatch(PERCENT_RE.strip("^$"), value):
            return value
    raise ValueError("must be a non-negative integer or a percentage such as '25%'")


Percent = Annotated[str, StringConstraints(max_length=4, pattern=PERCENT_RE), BeforeValidator(reject_whitespace)]
IntOrPercent = Annotated[
    Annotated[int, Field(ge=0, le=100_000)] | Percent,
    BeforeValidator(_int_or_percent),
    Field(examples=[1, "25%"]),
]

_SUFFIXES: dict[str, Decimal] = {
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY_PARTS = re.compile(r"([0-9.]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?")


def parse_quantity(text: str) -> Decimal:
    """Value of a Kubernetes quantity in base units (bytes, cores).

    Own implementation rather than kubernetes.utils so parameter validation does not import the
    whole client; caps (max_limit, max_size) can only be enforced on numbers, not on strings.
    """
    match = _QUANTITY_PARTS.fullmatch(text)
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {safe_repr(text)}")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        value = Decimal(number)
        if suffix[:1] in ("e", "E") and len(suffix) > 1:
            return value.scaleb(int(suffix[1:]))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not a Kubernetes quantity: {safe_repr(text)}") from exc
    return value * _SUFFIXES[suffix]


# --------------------------------------------------------------------------------------------------
# Parameters, risk, RBAC, plans


class Risk(str, Enum):
    """Blast radius if the action goes wrong; the policy layer maps it to auto / approval / deny."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


def _schema_without_docstring(schema: dict[str, Any]) -> None:
    """Docstrings explain the code to developers; the schema goes to the LLM and API clients,
    who get the action's summary and the per-field descriptions instead."""
    schema.pop("description", None)


class ActionParams(BaseModel):
    """Base of every parameter model.

    extra="forbid" so a misspelt or invented parameter from the LLM is an error rather than being
    silently dropped (which would run the action with defaults the model did not intend); frozen so
    a validated request cannot be altered between approval and execution.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_without_docstring)


class NoParams(ActionParams):
    """For actions fully determined by their target."""


class RbacRule(NamedTuple):
    """One permission an action needs; the union over the catalog becomes the executor's ClusterRole."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class PlanDraft:
    """What a family module's planner returns: the API calls, plus anything the approver should
    know for these particular parameters (e.g. scaling to zero) and a risk raised for them."""

    steps: list[str]
    warnings: list[str] = field(default_factory=list)
    risk: Risk | None = None


class ActionPlan(BaseModel):
    """The concrete, human-readable plan of one action on one target.

    Shown to approvers and stored with the action record, so it names the exact API calls; the
    executor performs these calls and nothing else.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    target: ResourceRef
    parameters: dict[str, Any]
    steps: list[str]
    mutates: bool
    risk: Risk
    sensitive: bool
    inverse: str | None = None
    warnings: list[str] = Field(default_factory=list)


# Kinds whose involvement makes any mutation need a human (field notes: "sensitive kinds (Node,
# StatefulSet) need a human"): both carry state or capacity that many workloads depend on.
SENSITIVE_KINDS = frozenset({"Node", "StatefulSet"})

API_VERSIONS: Mapping[str, str] = {
    "Pod": "v1",
    "Node": "v1",
    "Namespace": "v1",
    "PersistentVolumeClaim": "v1",
    "Event": "v1",
    "PersistentVolume": "v1",
    "Service": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "StorageClass": "storage.k8s.io/v1",
}

Planner = Callable[[ResourceRef, Any], "PlanDraft | list[str]"]
Checker = Callable[[ResourceRef, Any], None]

_DNS_LABEL = re.compile(DNS_LABEL_RE)
_DNS_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_RE)
_KIND = re.compile(KIND_RE)
# Any object name the API server accepts at all (path segment rules), for wildcard targets whose
# kind may use a laxer grammar than DNS subdomains (e.g. ClusterRole "system:node").
_ANY_NAME = re.compile(r"^[^/%\s]{1,253}$")


def obj(target: ResourceRef) -> str:
    """`namespace/name` or `name`, the form used in plan steps."""
    return f"{target.namespace}/{target.name}" if target.namespace else target.name


def ref(target: ResourceRef) -> str:
    """`apps/v1 Deployment payments/api`: the object an API call addresses."""
    version = API_VERSIONS.get(target.kind)
    return f"{version} {target.kind} {obj(target)}" if version else f"{target.kind} {obj(target)}"


@dataclass(frozen=True)
class ActionSpec:
    """Everything the system knows about one remediation, in one place.

    The same object drives the LLM prompt (summary, when_to_use, schema), the policy (risk,
    sensitive), the executor (plan, rbac) and the rollback (inverse), so they cannot disagree.
    """

    name: str
    summary: str
    params: type[ActionParams]
    target_kinds: tuple[str, ...]
    risk: Risk
    mutates: bool
    sensitive: bool
    preconditions: tuple[str, ...]
    when_to_use: str
    when_not_to_use: str
    verification: str
    inverse: str | None
    rbac: tuple[RbacRule, ...]
    planner: Planner = field(repr=False)
    # How the inverse is parameterised: the executor records these values before mutating.
    inverse_note: str = ""
    dry_run: str = "server-side: every write is sent with dryRun=All and the result diffed against the live object"
    check: Checker | None = field(default=None, repr=False)
    # First, do no harm: the analysis proposes a mutating action only when one of ``helps_when`` holds
    # for its target (a structured finding, kubernaut.models.finding) and none of ``harmful_when`` does.
    # Empty ``helps_when`` on a mutating action: never proposed by the analysis, only chosen by a human.
    helps_when: tuple[FindingKind, ...] = ()
    harmful_when: tuple[FindingKind, ...] = ()

    # -- targets -----------------------------------------------------------------------------

    @property
    def any_kind(self) -> bool:
        return self.target_kinds == ("*",)

    def validate_target(self, target: ResourceRef) -> ResourceRef:
        """Refuse targets this action cannot act on, before anything talks to the API server.

        Names are checked against the Kubernetes grammar here (ResourceRef only bounds lengths)
        because they come from alert labels and end up in URLs, plans and audit lines.
        """
        if not isinstance(target, ResourceRef):
            raise CatalogError(f"{self.name}: target must be a ResourceRef, got {type(target).__name__}")
        kind = target.kind
        if not self.any_kind and kind not in self.target_kinds:
            raise CatalogError(
                f"{self.name}: target kind {safe_repr(kind)} is not accepted (accepted: {', '.join(self.target_kinds)})"
            )
        if not _KIND.fullmatch(kind):
            raise CatalogError(f"{self.name}: target kind {safe_repr(kind)} is not a Kubernetes kind")
        namespace = target.namespace
        if kind == "Namespace":
            # Namespace-wide actions address the namespace by name; tolerate it repeated in namespace.
            if namespace is not None and namespace != target.name:
                raise CatalogError(
                    f"{self.name}: target Namespace {safe_repr(target.name)} has a different namespace field "
                    f"{safe_repr(namespace)}"
                )
            namespace = None
        elif target.cluster_scoped:
            if namespace:
                raise CatalogError(
                    f"{self.name}: {kind} is cluster-scoped; target namespace must be empty, got {safe_repr(namespace)}"
                )
        elif not namespace:
            raise CatalogError(
                f"{self.name}: target {kind} {safe_repr(target.name)} is namespaced; namespace is missing"
            )
        if namespace is not None and not _DNS_LABEL.fullmatch(namespace):
            raise CatalogError(f"{self.name}: target namespace {safe_repr(namespace)} is not a valid namespace name")
        name_re = _DNS_LABEL if kind == "Namespace" else _DNS_SUBDOMAIN
        if kind in API_VERSIONS or not self.any_kind:
            valid = bool(name_re.fullmatch(target.name))
        else:
            valid = (
                bool(_ANY_NAME.fullmatch(target.name))
                and target.name not in (".", "..")
                and not any(_bad_char(ch, "") for ch in target.name)
            )
        if not valid:
            raise CatalogError(f"{self.name}: target name {safe_repr(target.name)} is not a valid {kind} name")
        return target

    def needs_approval(self, target: ResourceRef) -> bool:
        """Approval by default: a mutation that is sensitive itself or touches a sensitive kind.
        Reading (collect_diagnostics) and notifying never wait for a human."""
        return self.mutates and (self.sensitive or target.kind in SENSITIVE_KINDS)

    # -- parameters and plan -----------------------------------------------------------------

    def parse_params(self, parameters: Mapping[str, Any] | ActionParams | None) -> ActionParams:
        """Validate raw parameters (LLM or API JSON) into this action's model.

        Errors are re-raised as CatalogError with `field: message` items so the caller can feed
        them back to the LLM or the API client verbatim.
        """
        if isinstance(parameters, ActionParams):
            if type(parameters) is not self.params:
                raise CatalogError(
                    f"{self.name}: parameters must be {self.params.__name__}, got {type(parameters).__name__}"
                )
            return parameters
        if parameters is None:
            parameters = {}
        if not isinstance(parameters, Mapping):
            raise CatalogError(f"{self.name}: parameters must be an object, got {type(parameters).__name__}")
        try:
            return self.params.model_validate(dict(parameters))
        except ValidationError as exc:
            raise CatalogError(f"{self.name}: invalid parameters: {format_validation_error(exc)}") from None

    def validate(self, target: ResourceRef, params: ActionParams | Mapping[str, Any] | None = None) -> ActionParams:
        """Target, parameters, and the checks that need both (e.g. a derived name's length)."""
        self.validate_target(target)
        parsed = self.parse_params(params)
        if self.check is not None:
            try:
                self.check(target, parsed)
            except CatalogError:
                raise
            except ValueError as exc:
                raise CatalogError(f"{self.name}: {exc}") from None
        return parsed

    def plan(self, target: ResourceRef, params: ActionParams | Mapping[str, Any] | None = None) -> ActionPlan:
        """Describe the API calls this action would make on `target`; makes none itself."""
        parsed = self.validate(target, params)
        draft = self.planner(target, parsed)
        if not isinstance(draft, PlanDraft):
            draft = PlanDraft(steps=list(draft))
        return ActionPlan(
            action=self.name,
            target=target,
            parameters=parsed.model_dump(mode="json"),
            steps=draft.steps,
            mutates=self.mutates,
            risk=draft.risk or self.risk,
            sensitive=self.needs_approval(target),
            inverse=self.inverse,
            warnings=draft.warnings,
        )

    def document(self) -> dict[str, Any]:
        """JSON-ready description for GET /api/v1/actions and the LLM tool definition."""
        return {
            "name": self.name,
            "summary": self.summary,
            "target_kinds": list(self.target_kinds),
            "risk": self.risk.value,
            "mutates": self.mutates,
            "sensitive": self.sensitive,
            "preconditions": list(self.preconditions),
            "when_to_use": self.when_to_use,
            "when_not_to_use": self.when_not_to_use,
            "verification": self.verification,
            "inverse": self.inverse,
            "inverse_note": self.inverse_note,
            "dry_run": self.dry_run,
            "parameters_schema": self.params.model_json_schema(),
        }


def format_validation_error(exc: ValidationError) -> str:
    """`field: message; field: message` — short enough for an LLM repair prompt, and naming the
    field so a human sees at once what to fix. Input values are not echoed (they are untrusted)."""
    # Union members add their own tags to the location ("constrained-int", "function-before[...]");
    # they mean nothing to the reader, so keep field names and list indexes, and merge the messages
    # of one field into a single item.
    by_loc: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        parts = [str(p) for p in error.get("loc", ()) if isinstance(p, int) or str(p).isidentifier()]
        message = str(error.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        messages = by_loc.setdefault(".".join(parts), [])
        if message not in messages:
            messages.append(message)
    return "; ".join(
        f"{loc}: {' or '.join(messages)}" if loc else " or ".join(messages) for loc, messages in by_loc.items()
    )
