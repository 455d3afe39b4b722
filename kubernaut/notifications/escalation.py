"""When to notify again about an approval nobody decided (``notifications.escalation``): after
``escalate_after_s`` as ``approval.escalated``, ``remind_before_expiry_s`` before it expires as
``approval.reminder``; each once. The escalation job (kind ``escalate``) asks :func:`next_stage` every time it
runs and sleeps (reschedules) until the next stage is due, so no replica waits in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kubernaut.config.notifications import EscalationConfig

ESCALATED = "approval.escalated"
REMINDER = "approval.reminder"


@dataclass(frozen=True)
class Stage:
    event: str
    due: datetime


def stages(config: EscalationConfig, requested_at: datetime, expires_at: datetime) -> list[Stage]:
    """The stages of one approval, in time order; none at or after its expiry (expiry notifies by itself)."""
    found = []
    if config.escalate_after_s is not None:
        found.append(Stage(ESCALATED, requested_at + timedelta(seconds=config.escalate_after_s)))
    if config.remind_before_expiry_s is not None:
        due = expires_at - timedelta(seconds=config.remind_before_expiry_s)
        found.append(Stage(REMINDER, max(due, requested_at)))
    return sorted((s for s in found if s.due < expires_at), key=lambda s: s.due)


def next_stage(config: EscalationConfig, requested_at: datetime, expires_at: datetime, sent: set[str],
               now: datetime) -> tuple[Stage | None, float | None]:
    """(the stage to notify now, or None; seconds until the next one is due, or None when nothing is left)."""
    if now >= expires_at:
        return None, None
    for stage in stages(config, requested_at, expires_at):
        if stage.event in sent:
            continue
        if stage.due <= now:
            return stage, 0.0
        return None, (stage.due - now).total_seconds()
    return None, None
