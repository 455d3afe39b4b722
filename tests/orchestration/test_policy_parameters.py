"""Policy rules on an action's parameters (``parameters``, ``parameters_above``): what an approver's override
is judged by again. The overrides issue 12 names — scale to 0, max_deletions 50, delete_emptydir_data true —
are denied by a policy that says so, and the same actions with ordinary parameters are not."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.policy import Policy, PolicyInput, evaluate
from kubernaut.orchestration.verdict import decide, policy_facts
from kubernaut.storage.workflows import IncidentFacts, Proposal

POLICY = Policy.model_validate(yaml.safe_load("""
version: 1
rules:
  - name: no-scale-to-zero
    when: {action: ["scale_*"], parameters: {replicas: [0]}}
    decision: deny
  - name: keep-emptydir-data
    when: {action: [drain_node], parameters: {delete_emptydir_data: [true]}}
    decision: deny
  - name: bounded-cleanup
    when: {action: [cleanup_orphaned_pvcs], parameters_above: {max_deletions: 10}}
    decision: deny
  - name: our-registry-only
    when: {action: [set_image], parameters: {image: ["registry.example.com/*"]}}
    decision: require_approval
  - name: other-images
    when: {action: [set_image]}
    decision: deny
  - name: everything-else
    when: {}
    decision: require_approval
"""))

TARGETS = {"scale_deployment": ("Deployment", "api", "shop"), "drain_node": ("Node", "node-1", None),
           "cleanup_orphaned_pvcs": ("Namespace", "shop", None), "set_image": ("Deployment", "api", "shop")}


def judged(action: str, parameters: dict[str, Any]) -> str:
    kind, name, namespace = TARGETS[action]
    proposal = Proposal(id=1, incident_id=1, engine="rules", action=action, parameters=parameters,
                        target=ResourceRef(kind=kind, name=name, namespace=namespace), confidence=0.9,
                        root_cause="test", reasoning=[])
    incident = IncidentFacts(id=1, environment="production", priority="P2", severity="warning", signals=[],
                             target_kind=kind)
    verdict = decide(POLICY, policy_facts(proposal, incident), block=None, evidence=None, dry_run=False)
    return f"{verdict.outcome}:{verdict.rule}"


@pytest.mark.parametrize(("action", "parameters", "outcome"), [
    ("scale_deployment", {"replicas": 0}, "denied:no-scale-to-zero"),
    ("scale_deployment", {"replicas": 4}, "require_approval:everything-else"),
    ("drain_node", {"delete_emptydir_data": True}, "denied:keep-emptydir-data"),
    ("drain_node", {}, "require_approval:everything-else"),  # the default (false) is judged, too
    ("cleanup_orphaned_pvcs", {"max_deletions": 50}, "denied:bounded-cleanup"),
    ("cleanup_orphaned_pvcs", {}, "require_approval:everything-else"),  # default 10: not above 10
    ("set_image", {"container": "api", "image": "registry.example.com/pay/api:1.2"},
     "require_approval:our-registry-only"),
    ("set_image", {"container": "api", "image": "evil.io/api:1.2"}, "denied:other-images"),
])
def test_rules_on_parameters(action: str, parameters: dict[str, Any], outcome: str) -> None:
    assert judged(action, parameters) == outcome


def test_true_is_not_one_and_a_missing_parameter_never_matches() -> None:
    policy = Policy.model_validate({"version": 1, "rules": [
        {"name": "one", "when": {"parameters": {"replicas": [1]}}, "decision": "deny"},
        {"name": "rest", "when": {}, "decision": "allow"}]})
    base = {"environment": "staging", "priority": "P2", "severity": "warning", "risk": "low",
            "target_kind": "Deployment", "action": "x", "namespace": "shop", "engine": "rules", "mutates": True,
            "sensitive": False, "confidence": 0.9}
    assert evaluate(policy, PolicyInput(**base, parameters={"replicas": True})).rule == "rest"
    assert evaluate(policy, PolicyInput(**base, parameters={})).rule == "rest"
    assert evaluate(policy, PolicyInput(**base, parameters={"replicas": 1})).rule == "one"


def test_a_parameter_rule_names_its_field_when_malformed() -> None:
    with pytest.raises(ValidationError, match=r"parameters_above\.max_deletions"):
        Policy.model_validate({"version": 1, "rules": [
            {"name": "x", "when": {"parameters_above": {"max_deletions": "many"}}, "decision": "deny"}]})
