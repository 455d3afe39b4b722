"""The orchestrator's own approval rules, as pure functions: the requester cannot approve, a principal counts
once, two-person risk levels, the override a second approver approves, and principals only from credentials."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubernaut.models.principal import Principal, Role
from kubernaut.orchestration.approvals import (
    SYSTEM_REQUESTER,
    ApprovalError,
    approvers_required,
    check_approver,
    check_open,
    held_override,
    principal_of,
)
from kubernaut.storage.approvals import ApprovalRecord, Vote

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def person(name: str, method: str = "oidc") -> Principal:
    return Principal(name=name, method=method, roles=frozenset({Role.APPROVER}), approve_namespaces=("shop",))


def pending(*votes: Vote, requested_by: str = SYSTEM_REQUESTER, required: int = 1,
            override: dict[str, Any] | None = None, status: str = "pending") -> ApprovalRecord:
    return ApprovalRecord(
        id=7, workflow_id=3, incident_id=2, status=status, action="scale_deployment",
        target={"kind": "Deployment", "name": "api", "namespace": "shop"}, parameters={"replicas": 4},
        reason="production", dry_run_diff=None, requested_at=NOW, expires_at=NOW + timedelta(minutes=15),
        decided_by=None, decided_at=None, decision_reason=None, override_parameters=override, used_at=None,
        requested_by=requested_by, approvals_required=required, votes=list(votes))


def vote(who: Principal, approve: bool = True, override: dict[str, Any] | None = None) -> Vote:
    return Vote(approve=approve, actor=who.actor, method=who.method, roles=["approver"], override=override,
                decided_at=NOW)


def test_the_system_that_proposed_a_remediation_cannot_approve_it() -> None:
    for method in ("token", "kubernetes", "oidc"):
        with pytest.raises(ApprovalError, match="cannot approve") as refused:
            check_approver(pending(), person(SYSTEM_REQUESTER, method))
        assert refused.value.status == 403 and refused.value.reason == "self_approval"
    check_approver(pending(), person("alice"))


def test_a_person_who_requested_a_remediation_cannot_approve_it() -> None:
    alice = person("alice")
    with pytest.raises(ApprovalError, match="oidc:alice requested this remediation"):
        check_approver(pending(requested_by="alice"), alice)
    with pytest.raises(ApprovalError, match="cannot approve"):
        check_approver(pending(requested_by="oidc:alice"), alice)
    check_approver(pending(requested_by="oidc:alice"), person("bob"))


def test_the_same_principal_approving_twice_counts_once() -> None:
    alice = person("alice")
    with pytest.raises(ApprovalError, match="second, distinct approver") as refused:
        check_approver(pending(vote(alice), required=2), alice)
    assert refused.value.status == 403 and refused.value.reason == "same_approver"
    # Distinct principals do count: another person, or the same name authenticated another way.
    check_approver(pending(vote(alice), required=2), person("bob"))
    check_approver(pending(vote(alice), required=2), person("alice", "kubernetes"))
    # Having rejected is no approval.
    check_approver(pending(vote(alice, approve=False)), alice)


@pytest.mark.parametrize(("risk", "levels", "needed"), [
    ("high", ["high"], 2), ("critical", ["high"], 2), ("medium", ["high"], 1), ("low", [], 1),
    ("medium", ["medium", "critical"], 2), ("high", [], 1), ("catastrophic", ["critical"], 2),
])
def test_two_person_rule_covers_the_listed_level_and_above(risk: str, levels: list[str], needed: int) -> None:
    assert approvers_required(risk, levels) == needed


def test_a_second_approver_approves_the_first_approvers_override_as_it_is() -> None:
    alice = person("alice")
    first = pending(vote(alice, override={"replicas": 6}), required=2, override={"replicas": 6})
    assert held_override(first, None) == {"replicas": 6}
    assert held_override(first, {"replicas": 6}) == {"replicas": 6}
    with pytest.raises(ApprovalError, match="approve it as it is or reject it") as refused:
        held_override(first, {"replicas": 0})
    assert refused.value.status == 409
    without = pending(vote(alice), required=2)
    assert held_override(without, None) is None
    with pytest.raises(ApprovalError, match="approved without an override"):
        held_override(without, {"replicas": 0})
    assert held_override(pending(), {"replicas": 5}) == {"replicas": 5}
    assert held_override(pending(), {}) is None


def test_only_an_open_approval_can_be_decided() -> None:
    with pytest.raises(ApprovalError, match="not found") as missing:
        check_open(None, 9, NOW)
    assert missing.value.status == 404
    with pytest.raises(ApprovalError, match="already approved"):
        check_open(pending(status="approved"), 7, NOW)
    with pytest.raises(ApprovalError, match="expired"):
        check_open(pending(), 7, NOW + timedelta(hours=1))
    assert check_open(pending(), 7, NOW).id == 7


@pytest.mark.parametrize("claimed", ["alice", {"by": "alice"}, {"name": "alice"}, None, {"name": "", "method": "oidc"}])
def test_a_name_is_not_a_principal(claimed: Any) -> None:
    """Only what the gateway authenticated decides: a body's free-text name, or anything malformed, is 401."""
    with pytest.raises(ApprovalError, match="authenticated principal") as refused:
        principal_of(claimed)
    assert refused.value.status == 401


def test_the_gateways_principal_record_is_accepted() -> None:
    alice = person("alice")
    record = {**alice.model_dump(mode="json"), "actor": alice.actor}  # extra keys the gateway adds are ignored
    assert principal_of(record) == alice
