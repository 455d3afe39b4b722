"""The Slack app's messages: an approval request as Block Kit with Approve/Reject buttons, its in-place update
once decided, and the other events of an incident (as replies in the incident's thread).

Text from alerts, analyses and diffs is untrusted: it is redacted before it gets here and escaped for Slack's
mrkdwn (``&``, ``<``, ``>``), so it can neither mention ``<!channel>`` nor forge a link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from kubernaut.slack.webapi import APPROVE, REJECT

_DIFF_LINES = 12
_TEXT_MAX = 2900  # Block Kit section text is limited to 3000 characters


def escape(text: str) -> str:
    """Slack mrkdwn escaping (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int = _TEXT_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ApprovalCard(BaseModel):
    """What an approval message shows (already redacted)."""

    model_config = ConfigDict(frozen=True)

    approval_id: int
    incident_id: int
    action: str
    target: str
    risk: str
    reason: str
    root_cause: str | None = None
    diff: str | None = None
    expires_at: datetime
    console_url: str | None = None  # the console's page of this approval
    status: str = "pending"
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    rehearsal: bool = False  # a dry-run workflow's approval (execution.dry_run_approvals): approving changes nothing


# What a rehearsal card says (the orchestrator's notification says the same: kubernaut/orchestration/messages.py).
REHEARSAL_TEXT = ("*Dry-run rehearsal*: execution mode is dry-run, so approving changes nothing; the decision is "
                  "recorded as it would be live.")


def diff_summary(diff: str | None) -> str | None:
    """The changed lines of a dry-run diff, at most a dozen (the console shows it whole)."""
    if not diff:
        return None
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    lines = changed or diff.splitlines()
    more = len(lines) - _DIFF_LINES
    summary = "\n".join(lines[:_DIFF_LINES]) + (f"\n… {more} more lines" if more > 0 else "")
    return _clip(summary, 2500)


def approval_blocks(card: ApprovalCard) -> list[dict[str, Any]]:
    """The approval request; once decided, the same card with the outcome instead of the buttons."""
    fields = [
        f"*Incident*\n#{card.incident_id}",
        f"*Action*\n`{escape(card.action)}`",
        f"*Target*\n{escape(card.target)}",
        f"*Risk*\n{escape(card.risk)}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(
            f"Approval needed{' (dry-run rehearsal)' if card.rehearsal else ''}: {card.action}", 150)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    if card.rehearsal:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": REHEARSAL_TEXT}})
    if card.root_cause:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _clip(f"*Root cause*\n{escape(card.root_cause)}")}})
    blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                               "text": _clip(f"*Why approval*\n{escape(card.reason)}")}})
    summary = diff_summary(card.diff)
    if summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": f"*Dry-run diff*\n```{escape(summary)}```"}})
    if card.status == "pending":
        buttons: list[dict[str, Any]] = [
            {"type": "button", "action_id": APPROVE, "style": "primary", "value": str(card.approval_id),
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": REJECT, "style": "danger", "value": str(card.approval_id),
             "text": {"type": "plain_text", "text": "Reject"}},
        ]
        if card.console_url:
            buttons.append({"type": "button", "action_id": "kubernaut_open", "url": card.console_url,
                            "text": {"type": "plain_text", "text": "Open in console"}})
        blocks.append({"type": "actions", "block_id": f"approval-{card.approval_id}", "elements": buttons})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"Approval {card.approval_id} · expires <!date^{int(card.expires_at.timestamp())}^{{date_short_pretty}} "
            f"{{time}}|{card.expires_at:%Y-%m-%d %H:%M} UTC>")}]})
    else:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": outcome_line(card)}})
        if card.console_url:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn",
                                                             "text": f"<{card.console_url}|Open in console>"}]})
    return blocks


def outcome_line(card: ApprovalCard) -> str:
    mark = {"approved": ":white_check_mark:", "used": ":white_check_mark:", "rejected": ":x:",
            "expired": ":hourglass:", "cancelled": ":no_entry_sign:"}.get(card.status, ":grey_question:")
    status = "approved" if card.status == "used" else card.status
    who = f" by {escape(card.decided_by)}" if card.decided_by else ""
    when = f" at {card.decided_at:%Y-%m-%d %H:%M:%S} UTC" if card.decided_at else ""
    why = f": {escape(_clip(card.decision_reason, 300))}" if card.decision_reason else ""
    rehearsal = " _(dry-run rehearsal: nothing was changed)_" if card.rehearsal else ""
    return f"{mark} *{status.capitalize()}*{who}{when}{why}{rehearsal}"


def summary_text(card: ApprovalCard) -> str:
    """The notification text of an approval message (what Slack shows where blocks are not rendered)."""
    rehearsal = " (dry-run rehearsal)" if card.rehearsal else ""
    if card.status == "pending":
        return f"Approval needed{rehearsal}: {card.action} on {card.target} (incident #{card.incident_id})"
    status = "approved" if card.status == "used" else card.status
    return f"Approval {card.approval_id} {status}" + (f" by {card.decided_by}" if card.decided_by else "") + rehearsal


def event_blocks(title: str, body: str) -> list[dict[str, Any]]:
    return [{"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*{escape(title)}*\n{escape(body)}")}}]
