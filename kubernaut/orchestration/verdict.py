"""The workflow decision: policy + blocking + autonomy → verdict, a pure function of typed records.

The policy decides first (deny / review / require approval / allow). A mutating action the policy would let
run (allowed or approved) is stopped by a block on its target, in live mode; an allowed mutating action that
is not blocked runs unattended only with sufficient evidence, else it waits for approval. Missing evidence
counts as insufficient: the decision fails closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from kubernaut.execution.catalog import get_action
from kubernaut.orchestration.autonomy import Evidence
from kubernaut.orchestration.blocking import Block
from kubernaut.orchestration.policy import Policy, PolicyInput, evaluate
from kubernaut.storage.workflows import IncidentFacts, Proposal

Outcome = Literal["denied", "review", "require_approval", "allow", "blocked"]
_POLICY_OUTCOME: dict[str, Outcome] = {"deny": "denied", "review": "review", "require_approval": "require_approval",
                                       "allow": "allow"}


class Verdict(BaseModel):
    """What a workflow does, and why: stored as the detail of its ``policy`` step."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reason: str
    rule: str  # the policy rule that decided
    policy: str  # the policy's own decision, before blocks and autonomy
    facts: PolicyInput
    block: Block | None = None
    autonomy: Evidence | None = None

    def detail(self) -> dict[str, Any]:
        """As the ``policy`` step records it: ``block`` and ``autonomy`` only when they were part of it."""
        absent = {k for k in ("block", "autonomy") if getattr(self, k) is None}
        return self.model_dump(mode="json", exclude=absent)


def policy_facts(proposal: Proposal, incident: IncidentFacts) -> PolicyInput:
    """What the policy sees of one proposed action: the incident's facts and the catalog's plan of the action."""
    spec = get_action(proposal.action)
    plan = spec.plan(proposal.target, proposal.parameters)
    return PolicyInput(
        environment=incident.environment, priority=incident.priority, severity=incident.severity,
        risk=plan.risk.value, target_kind=proposal.target.kind, action=spec.name, namespace=proposal.target.namespace,
        engine=proposal.engine, mutates=spec.mutates, sensitive=plan.sensitive, confidence=proposal.confidence,
        parameters=plan.parameters, cluster=incident.cluster,
    )


def decide(policy: Policy, facts: PolicyInput, *, block: Block | None, evidence: Evidence | None, dry_run: bool,
           unknown_environment: str = "production", now: datetime | None = None) -> Verdict:
    """The verdict on one proposed action.

    ``block`` is what the blocking rules say of the target (None: nothing blocks); a dry-run workflow changes
    nothing, so a block does not stop it (its dry-run shows what would happen). ``evidence`` is the autonomy
    gate's measure of the action for this signature (None: not measured, which never lets it run unattended).
    """
    ruling = evaluate(policy, facts, now, unknown_environment=unknown_environment)
    outcome = _POLICY_OUTCOME[ruling.decision]
    base = Verdict(outcome=outcome, reason=ruling.reason, rule=ruling.rule, policy=ruling.decision, facts=facts)
    if not facts.mutates or outcome not in ("allow", "require_approval"):
        return base
    if block is not None and not dry_run:
        until = f" (until {block.until:%Y-%m-%d %H:%M:%S} UTC)" if block.until else ""
        return base.model_copy(update={"outcome": "review" if block.review else "blocked", "block": block,
                                       "reason": f"{block.rule}: {block.reason}{until}"})
    if outcome == "require_approval":
        return base
    if evidence is None:
        return base.model_copy(update={
            "outcome": "require_approval",
            "reason": f"{ruling.reason}; not enough evidence to act unattended: no evidence was measured"})
    if not evidence.sufficient:
        return base.model_copy(update={
            "outcome": "require_approval", "autonomy": evidence,
            "reason": f"{ruling.reason}; not enough evidence to act unattended: {evidence.explanation}"})
    return base.model_copy(update={"autonomy": evidence})
