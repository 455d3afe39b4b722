"""A dry-run rehearsal approval (execution.dry_run_approvals) says so in its notification and on its Slack card,
before and after the decision; a live approval's text is unchanged. Fast tier (the Slack button on a rehearsal,
through the real endpoint: tests/gateway/test_slack_interactions.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from kubernaut.models.resource import ResourceRef
from kubernaut.notifications.slack_blocks import ApprovalCard, approval_blocks, summary_text
from kubernaut.orchestration import messages
from kubernaut.storage.workflows import PlanStep, Proposal

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def card(**kw: object) -> ApprovalCard:
    return ApprovalCard(**{"approval_id": 42, "incident_id": 7, "action": "increase_memory_limits",
                           "target": "Deployment/web in ns/default", "risk": "medium",
                           "reason": "production needs confidence of at least 0.8", "expires_at": NOW, **kw})


def test_the_slack_card_of_a_rehearsal_says_approving_changes_nothing() -> None:
    pending = approval_blocks(card(rehearsal=True))
    assert pending[0]["text"]["text"] == "Approval needed (dry-run rehearsal): increase_memory_limits"
    assert "*Dry-run rehearsal*: execution mode is dry-run, so approving changes nothing" in json.dumps(pending)
    assert [b for b in pending if b["type"] == "actions"], "the buttons work the same on a rehearsal"
    assert summary_text(card(rehearsal=True)).startswith("Approval needed (dry-run rehearsal): ")
    decided = card(rehearsal=True, status="used", decided_by="kubernetes:alice@example.com", decided_at=NOW)
    assert "(dry-run rehearsal: nothing was changed)" in json.dumps(approval_blocks(decided))
    assert summary_text(decided).endswith("(dry-run rehearsal)")
    live = json.dumps(approval_blocks(card())) + summary_text(card())
    assert "rehearsal" not in live.lower()


def test_the_approval_notification_of_a_rehearsal_is_marked() -> None:
    target = ResourceRef(kind="Deployment", name="web", namespace="default")
    proposal = Proposal(id=1, incident_id=7, engine="rules", action="increase_memory_limits",
                        parameters={"factor": 1.5}, target=target, confidence=0.75, root_cause="OOMKilled",
                        reasoning=[])
    main = PlanStep(action="increase_memory_limits", target=target, parameters={"factor": 1.5})
    rehearsal = messages.approval_requested(7, proposal, main, approval_id=3, why="production", diff=None, ttl_s=900,
                                            rehearsal=True)
    assert rehearsal.title.startswith("[kubernaut] approval needed (dry-run rehearsal): increase_memory_limits")
    assert "approving changes nothing" in rehearsal.body
    live = messages.approval_requested(7, proposal, main, approval_id=3, why="production", diff=None, ttl_s=900)
    assert live.title == f"[kubernaut] approval needed: increase_memory_limits on {target}"
    assert "rehearsal" not in live.body.lower()
