"""The declaration of one action: everything the system knows about it, in one place."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.execution.catalog.params import ActionParams, format_validation_error
from kubernaut.execution.catalog.plan import ActionPlan, PlanDraft, Risk
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.targets import ANY_KIND, SENSITIVE_KINDS, check_target
from kubernaut.models.finding import FindingKind
from kubernaut.models.resource import ResourceRef

if TYPE_CHECKING:
    from kubernaut.execution.operations.base import Operation

Planner = Callable[[ResourceRef, Any], "PlanDraft | list[str]"]
Checker = Callable[[ResourceRef, Any], None]


class Family(int, Enum):
    """What an action acts on. The catalog lists actions by family in this order, smallest blast radius
    first (the order of the LLM's action menu and of GET /api/v1/actions), read-only ones last."""

    POD = 1
    WORKLOAD = 2
    RESOURCES = 3
    NODE = 4
    STORAGE = 5
    JOB = 6
    NETWORK = 7
    OBSERVE = 8


@dataclass(frozen=True)
class Prelude:
    """An action the workflow runs on the same target before this one (kubernaut.orchestration.plans)."""

    action: str
    purpose: str
    parameters: Mapping[str, Any] = field(default_factory=dict)


# The kinds with a health rule in the effectiveness assessment (kubernaut.effectiveness.target_reader reads their
# pods or conditions): an action whose incident is about one of them is judged on that object, else on
# its own target (a restarted pod shows whether the restart helped on its workload).
HEALTH_RULE_KINDS: tuple[str, ...] = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Node")
DRY_RUN_SERVER_SIDE = "server-side: every write is sent with dryRun=All and the result diffed against the live object"
DRY_RUN_READ_ONLY = "read-only: nothing to dry-run"


@dataclass(frozen=True, kw_only=True)
class ActionSpec:
    """Everything the system knows about one remediation, in one place: its module in
    kubernaut.execution.actions declares it, and everything else reads it from the catalog.

    The same object drives the LLM prompt (summary, when_to_use, schema), the policy (risk,
    sensitive), the executor (plan, rbac, operation), the rollback (inverse), the workflow (preludes)
    and the effectiveness assessment (health_kinds), so they cannot disagree.
    """

    name: str
    family: Family
    summary: str
    params: type[ActionParams]
    target_kinds: tuple[str, ...]
    risk: Risk
    mutates: bool = True
    sensitive: bool = False
    preconditions: tuple[str, ...] = ()
    when_to_use: str
    when_not_to_use: str
    verification: str
    inverse: str | None = None
    rbac: tuple[RbacRule, ...]
    planner: Planner = field(repr=False)
    # How the inverse is parameterised: the executor records these values before mutating.
    inverse_note: str = ""
    dry_run: str = DRY_RUN_SERVER_SIDE
    check: Checker | None = field(default=None, repr=False)
    # First, do no harm: the analysis proposes a mutating action only when one of ``helps_when`` holds
    # for its target (a structured finding, kubernaut.models.finding) and none of ``harmful_when`` does.
    # Empty ``helps_when`` on a mutating action: never proposed by the analysis, only chosen by a human.
    helps_when: tuple[FindingKind, ...] = ()
    harmful_when: tuple[FindingKind, ...] = ()
    # Actions the workflow runs first on the same target (evidence a restart destroys, a cordon before a drain).
    preludes: tuple[Prelude, ...] = ()
    # Incident kinds on which the effectiveness assessment judges this action instead of its own target.
    health_kinds: tuple[str, ...] = HEALTH_RULE_KINDS
    # The Kubernetes side (kubernaut.execution.operations.base.Operation); every mutating action has one.
    operation: Operation | None = field(default=None, repr=False, compare=False)

    # -- targets -----------------------------------------------------------------------------

    @property
    def any_kind(self) -> bool:
        return self.target_kinds == ANY_KIND

    def validate_target(self, target: ResourceRef) -> ResourceRef:
        """Refuse targets this action cannot act on, before anything talks to the API server."""
        return check_target(self.name, self.target_kinds, target)

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

