"""An action's declarative facts as data: ``kubernaut/execution/actions/<name>.yaml`` next to ``<name>.py``.

The YAML says what the action is (summary, when to use it and not, risk, preconditions, verification,
inverse, RBAC, preludes, the findings it helps or harms); the module adds what only code can say (its
parameter model, plan, operation, cross-field check) through ``declared``, which validates the YAML
strictly and builds the one ``ActionSpec`` everything else reads. A typo in a key, a finding kind or a
family fails at import, like every other check of the registry.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kubernaut.execution.catalog.params import ActionParams, format_validation_error
from kubernaut.execution.catalog.plan import Risk
from kubernaut.execution.catalog.rbac import RbacRule
from kubernaut.execution.catalog.resources import QUOTA_GUARD
from kubernaut.execution.catalog.spec import (
    DRY_RUN_READ_ONLY,
    DRY_RUN_SERVER_SIDE,
    HEALTH_RULE_KINDS,
    ActionSpec,
    Checker,
    Family,
    Planner,
    Prelude,
)
from kubernaut.execution.catalog.workloads import GITOPS_GUARD
from kubernaut.models.finding import OWNED_ELSEWHERE, RESTART_FUTILE, SCHEDULING_BLOCKED, FindingKind

if TYPE_CHECKING:
    from kubernaut.execution.operations.base import Operation

ACTIONS_PACKAGE = "kubernaut.execution.actions"

# Sentences several actions end their when_not_to_use with, kept in one place (``guards: [quota, gitops]``).
GUARDS: dict[str, str] = {"quota": QUOTA_GUARD, "gitops": GITOPS_GUARD}
# Finding groups a declaration may name instead of listing their kinds (kubernaut.models.finding).
FINDING_GROUPS: dict[str, tuple[FindingKind, ...]] = {
    "OWNED_ELSEWHERE": OWNED_ELSEWHERE,
    "SCHEDULING_BLOCKED": SCHEDULING_BLOCKED,
    "RESTART_FUTILE": RESTART_FUTILE,
}


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RbacEntry(_Facts):
    """Verbs on one or more resources of one API group ("" is the core group)."""

    api_group: str
    resources: tuple[str, ...] = Field(min_length=1)
    verbs: tuple[str, ...] = Field(min_length=1)


class PreludeEntry(_Facts):
    action: str
    purpose: str
    parameters: dict[str, Any] = Field(default_factory=dict)


def _findings(names: tuple[str, ...]) -> tuple[FindingKind, ...]:
    kinds: list[FindingKind] = []
    for name in names:
        if name in FINDING_GROUPS:
            kinds.extend(FINDING_GROUPS[name])
        else:
            kinds.append(FindingKind(name))  # ValueError: an unknown finding kind
    return tuple(kinds)


class ActionFacts(_Facts):
    """The schema of an action's YAML: every key an ActionSpec takes from data, nothing else."""

    summary: str = Field(min_length=1)
    family: Family
    risk: Risk
    target_kinds: tuple[str, ...] = Field(min_length=1)
    mutates: bool = True
    sensitive: bool = False
    preconditions: tuple[str, ...] = ()
    when_to_use: str = Field(min_length=1)
    when_not_to_use: str = Field(min_length=1)
    guards: tuple[str, ...] = ()
    verification: str = Field(min_length=1)
    inverse: str | None = None
    inverse_note: str = ""
    # Default: server-side dry-run for a mutating action, nothing to dry-run for a read-only one.
    dry_run: str | None = None
    # A finding kind's value, or the name of a group in FINDING_GROUPS.
    helps_when: tuple[str, ...] = ()
    harmful_when: tuple[str, ...] = ()
    preludes: tuple[PreludeEntry, ...] = ()
    health_kinds: tuple[str, ...] = HEALTH_RULE_KINDS
    rbac: tuple[RbacEntry, ...] = ()

    @field_validator("family", mode="before")
    @classmethod
    def _family_by_name(cls, value: Any) -> Any:
        return Family[value.upper()] if isinstance(value, str) and value.upper() in Family.__members__ else value

    @field_validator("guards")
    @classmethod
    def _known_guards(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [guard for guard in value if guard not in GUARDS]
        if unknown:
            raise ValueError(f"unknown guard(s) {unknown}; known: {sorted(GUARDS)}")
        return value

    @field_validator("helps_when", "harmful_when")
    @classmethod
    def _known_findings(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        _findings(value)
        return value

    def spec(self, name: str, *, params: type[ActionParams], planner: Planner, operation: Operation | None,
             check: Checker | None) -> ActionSpec:
        return ActionSpec(
            name=name,
            family=self.family,
            summary=self.summary,
            params=params,
            target_kinds=self.target_kinds,
            risk=self.risk,
            mutates=self.mutates,
            sensitive=self.sensitive,
            preconditions=self.preconditions,
            when_to_use=self.when_to_use,
            when_not_to_use=" ".join([self.when_not_to_use, *(GUARDS[guard] for guard in self.guards)]),
            verification=self.verification,
            inverse=self.inverse,
            inverse_note=self.inverse_note,
            dry_run=self.dry_run or (DRY_RUN_SERVER_SIDE if self.mutates else DRY_RUN_READ_ONLY),
            helps_when=_findings(self.helps_when),
            harmful_when=_findings(self.harmful_when),
            preludes=tuple(Prelude(p.action, p.purpose, p.parameters) for p in self.preludes),
            health_kinds=self.health_kinds,
            rbac=tuple(RbacRule(entry.api_group, resource, entry.verbs)
                       for entry in self.rbac for resource in entry.resources),
            planner=planner,
            check=check,
            operation=operation,
        )


def load_facts(name: str, text: str) -> ActionFacts:
    """Parse and validate one action's YAML; any defect is a RuntimeError naming the file."""
    try:
        data = yaml.safe_load(text)
        return ActionFacts.model_validate(data)
    except yaml.YAMLError as exc:
        raise RuntimeError(f"action {name}: {name}.yaml is not YAML: {exc}") from None
    except ValidationError as exc:
        raise RuntimeError(f"action {name}: {name}.yaml: {format_validation_error(exc)}") from None


def declared(module: str, *, params: type[ActionParams], planner: Planner, operation: Operation | None = None,
             check: Checker | None = None) -> ActionSpec:
    """The ActionSpec of the action module ``module`` (its ``__name__``): its YAML plus its code."""
    name = module.rpartition(".")[2]
    source = resources.files(ACTIONS_PACKAGE).joinpath(f"{name}.yaml")
    if not source.is_file():
        raise RuntimeError(f"action module {module} has no {name}.yaml next to it")
    return load_facts(name, source.read_text(encoding="utf-8")).spec(
        name, params=params, planner=planner, operation=operation, check=check)
