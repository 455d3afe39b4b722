"""One place per action: each module of kubernaut.execution.actions declares everything about its action
(its facts in <name>.yaml next to it, its code in <name>.py), and the catalog, the workflow's preludes, the
effectiveness subject and the executor's RBAC read it."""

from __future__ import annotations

import importlib
import pkgutil
from datetime import datetime, timezone
from importlib import resources
from types import ModuleType
from typing import Any

import pytest

from kubernaut.effectiveness.monitor import judged_subject
from kubernaut.execution import actions
from kubernaut.execution.catalog import CATALOG, ActionSpec, Family, NoParams, Prelude, RbacRule, Risk
from kubernaut.execution.catalog.declaration import declared, load_facts
from kubernaut.execution.catalog.rbac import cluster_role_rules
from kubernaut.execution.catalog.registry import action_modules, build_catalog
from kubernaut.execution.catalog.spec import DRY_RUN_SERVER_SIDE
from kubernaut.execution.catalog.workloads import GITOPS_GUARD
from kubernaut.execution.operations import OPERATIONS
from kubernaut.execution.operations.base import Operation
from kubernaut.models.finding import OWNED_ELSEWHERE, FindingKind
from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.plans import plan_for
from kubernaut.storage.assessments import ActionToAssess

# What orchestration/plans.py and effectiveness/monitor.py held in tables of their own before the
# actions declared them: the derivations must give the same answers.
FORMER_PRELUDES = {
    "restart_pod": ("collect_diagnostics", {"include_events": True, "include_logs": True},
                    "keep the evidence a restart destroys"),
    "delete_pod": ("collect_diagnostics", {"include_events": True, "include_logs": True},
                   "keep the evidence a deletion destroys"),
    "rollout_restart": ("collect_diagnostics", {"include_events": True, "include_logs": False},
                        "keep the evidence a restart destroys"),
    "drain_node": ("cordon_node", {}, "stop new pods landing on the node before evicting"),
}
FORMER_HEALTH_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod", "Node"}


def test_every_action_module_declares_one_complete_action() -> None:
    names = [info.name for info in pkgutil.iter_modules(actions.__path__)]
    assert sorted(names) == sorted(CATALOG)
    for name in names:
        spec = importlib.import_module(f"kubernaut.execution.actions.{name}").SPEC
        assert isinstance(spec, ActionSpec)
        assert spec.name == name and CATALOG[name] is spec
        assert spec.summary and spec.when_to_use and spec.when_not_to_use and spec.verification
        assert spec.target_kinds and isinstance(spec.risk, Risk) and isinstance(spec.family, Family)
        if spec.mutates:
            assert spec.rbac, name
            assert isinstance(spec.operation, Operation) and spec.operation.name == name
            assert OPERATIONS[name] is spec.operation
        else:
            assert spec.operation is None and name not in OPERATIONS


def test_preludes_and_health_kinds_are_the_former_tables() -> None:
    target = ResourceRef(kind="Pod", name="p", namespace="ns")
    for name in CATALOG:
        steps = plan_for(name, target, {"x": 1})
        assert steps[-1].action == name and steps[-1].parameters == {"x": 1}
        former = FORMER_PRELUDES.get(name)
        if former is None:
            assert len(steps) == 1, name
        else:
            assert [(s.action, s.parameters, s.purpose) for s in steps[:-1]] == [former]
        assert set(CATALOG[name].health_kinds) == FORMER_HEALTH_KINDS


class _Probe(Operation):
    name = "probe_widget"


def _throwaway_module(**overrides: Any) -> ModuleType:
    """An action added the way a developer adds one: a module with SPEC (here built in the test)."""
    module = ModuleType("kubernaut.execution.actions.probe_widget")
    declared: dict[str, Any] = {
        "name": "probe_widget",
        "family": Family.WORKLOAD,
        "summary": "A test action.",
        "params": NoParams,
        "target_kinds": ("Widget",),
        "risk": Risk.LOW,
        "when_to_use": "never",
        "when_not_to_use": "always",
        "verification": "none",
        "rbac": (RbacRule("example.com", "widgets", ("get", "patch")),),
        "planner": lambda target, params: [f"PATCH {target}"],
        "preludes": (Prelude("collect_diagnostics", "look first", {"include_logs": False}),),
        "health_kinds": ("Widget",),
        "operation": _Probe(),
    }
    declared.update(overrides)
    module.SPEC = ActionSpec(**declared)  # type: ignore[attr-defined]
    return module


def test_a_new_action_module_appears_in_every_derivation() -> None:
    catalog = build_catalog([*action_modules(), _throwaway_module()])
    assert "probe_widget" in catalog and len(catalog) == len(CATALOG) + 1

    target = ResourceRef(kind="Widget", name="w", namespace="ns")
    steps = plan_for("probe_widget", target, {}, catalog=catalog)
    assert [(s.action, s.parameters, s.purpose) for s in steps] == [
        ("collect_diagnostics", {"include_logs": False}, "look first"), ("probe_widget", {}, "remediation")]
    assert plan_for("probe_widget", target, {}) == [steps[-1]]  # the real catalog does not know it

    rules = cluster_role_rules(rule for spec in catalog.values() for rule in spec.rbac)
    assert {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "patch"]} in rules

    now = datetime.now(timezone.utc)
    action = ActionToAssess(
        id=1, action="probe_widget", status="succeeded", dry_run=False, incident_id=1, workflow_id=1,
        target={"kind": "Pod", "name": "p", "namespace": "ns"}, created_at=now, finished_at=now, signals=[],
        incident_kind="Widget", incident_name="w", incident_namespace="ns", workflow_signature=None)
    assert judged_subject(action, catalog=catalog) == target
    assert judged_subject(action.model_copy(update={"incident_kind": "Deployment"}), catalog=catalog).kind == "Pod"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"operation": None}, "an operation exactly when it mutates"),
        ({"rbac": ()}, "declares no RBAC"),
        ({"inverse": "no_such_action"}, "unknown inverse"),
        ({"preludes": (Prelude("no_such_action", "x"),)}, "unknown prelude"),
        ({"name": "restart_pod"}, "registered twice"),
    ],
)
def test_an_incomplete_declaration_fails_at_import(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        build_catalog([*action_modules(), _throwaway_module(**overrides)])


def test_a_module_without_an_action_fails_at_import() -> None:
    with pytest.raises(RuntimeError, match="declares no SPEC"):
        build_catalog([*action_modules(), ModuleType("kubernaut.execution.actions.helpers")])


def test_every_action_yaml_is_declared_by_its_module() -> None:
    yamls = sorted(entry.name.removesuffix(".yaml") for entry in resources.files(actions.__name__).iterdir()
                   if entry.name.endswith(".yaml"))
    assert yamls == sorted(CATALOG)


_MINIMAL_YAML = """
summary: A test action.
family: workload
risk: low
target_kinds: [Widget]
when_to_use: never
when_not_to_use: always
guards: [gitops]
verification: none
harmful_when: [target.healthy, OWNED_ELSEWHERE]
preludes:
- {action: collect_diagnostics, purpose: look first, parameters: {include_logs: false}}
rbac:
- {api_group: example.com, resources: [widgets, widgets/status], verbs: [get, patch]}
"""


def test_an_action_yaml_becomes_the_spec_it_declares() -> None:
    spec = load_facts("probe_widget", _MINIMAL_YAML).spec(
        "probe_widget", params=NoParams, planner=lambda target, params: [], operation=_Probe(), check=None)
    assert spec.family is Family.WORKLOAD and spec.risk is Risk.LOW and spec.target_kinds == ("Widget",)
    assert spec.when_not_to_use == "always " + GITOPS_GUARD
    assert spec.harmful_when == (FindingKind.TARGET_HEALTHY, *OWNED_ELSEWHERE)
    assert spec.preludes == (Prelude("collect_diagnostics", "look first", {"include_logs": False}),)
    assert spec.rbac == (RbacRule("example.com", "widgets", ("get", "patch")),
                         RbacRule("example.com", "widgets/status", ("get", "patch")))
    assert spec.dry_run == DRY_RUN_SERVER_SIDE and spec.mutates and not spec.sensitive


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("risk: low", "risk: tiny"), "risk"),
        (("family: workload", "family: gadgets"), "family"),
        (("target.healthy", "target.healthful"), "harmful_when"),
        (("guards: [gitops]", "guards: [gitops, politeness]"), "unknown guard"),
        (("verification: none", "verificaton: none"), "verificaton"),
        (("summary: A test action.", "summary: [unclosed"), "is not YAML"),
    ],
)
def test_a_defective_action_yaml_fails_at_import(change: tuple[str, str], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        load_facts("probe_widget", _MINIMAL_YAML.replace(*change))


def test_an_action_module_without_its_yaml_fails_at_import() -> None:
    with pytest.raises(RuntimeError, match=r"has no probe_widget\.yaml"):
        declared("kubernaut.execution.actions.probe_widget", params=NoParams, planner=lambda target, params: [])
