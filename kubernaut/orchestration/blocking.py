"""Blocking rules: cooldown, consecutive failures, ineffective chains, oscillation. Each block says
why and until when, and is recorded in ``blocks``. A pure function of the target's recent live outcomes
(``storage.workflows.recent_outcomes``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from pydantic import BaseModel, ConfigDict

from kubernaut.config.settings import OrchestrationConfig
from kubernaut.storage.workflows import PastOutcome

FAILED_PHASES = ("failed", "rolled_back", "timed_out")
# Pairs that undo each other: alternating between them on one target is oscillation.
_OPPOSITES = {("cordon_node", "uncordon_node"), ("pause_rollout", "resume_rollout"),
              ("suspend_cronjob", "resume_cronjob"), ("taint_node", "remove_taint")}


class Block(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    reason: str
    until: datetime | None
    review: bool = False  # a human must look (not just wait)


def _oscillates(action: str, parameters: dict[str, Any], history: list[PastOutcome]) -> bool:
    if action.startswith("scale_") and "replicas" in parameters:
        replicas = [h.parameters.get("replicas") for h in history if h.action == action][:3]
        series = [r for r in reversed(replicas) if isinstance(r, int)] + [parameters["replicas"]]
        if len(series) >= 3:
            steps = [b - a for a, b in pairwise(series) if b != a]
            return len(steps) >= 2 and all(x * y < 0 for x, y in pairwise(steps))
    actions = [h.action for h in history[:3]]
    for a, b in _OPPOSITES:
        if action in (a, b):
            other = b if action == a else a
            if actions[:2] == [other, action]:
                return True
    return False


def window_s(cfg: OrchestrationConfig) -> float:
    """How far back ``check`` looks: the history to read for it."""
    return max(cfg.cooldown_s, cfg.failure_block_s, cfg.oscillation_window_s)


def check(cfg: OrchestrationConfig, history: list[PastOutcome], action: str, parameters: dict[str, Any],
          now: datetime) -> Block | None:
    """The first rule that blocks ``action`` on a target whose live outcomes of the last ``window_s`` (latest
    first) are ``history``; None when none does."""
    same = [h for h in history if h.action == action]
    if same and same[0].phase == "completed" and cfg.cooldown_s > 0:
        until = same[0].finished_at + timedelta(seconds=cfg.cooldown_s)
        if until > now:
            return Block(rule="cooldown", until=until,
                         reason=f"{action} ran on this target at {same[0].finished_at:%H:%M:%S}; "
                                f"cooldown {cfg.cooldown_s:.0f}s")

    streak = 0
    for h in same:
        if h.phase not in FAILED_PHASES:
            break
        streak += 1
    if streak >= cfg.failure_block_after:
        until = same[0].finished_at + timedelta(seconds=cfg.failure_block_s)
        if until > now:
            return Block(rule="consecutive-failures", until=until,
                         reason=f"{action} failed {streak} times in a row on this target")

    ineffective = 0
    for h in history:
        if h.phase not in FAILED_PHASES:
            break
        ineffective += 1
    if ineffective >= cfg.ineffective_chain:
        return Block(rule="ineffective-chain", until=None, review=True,
                     reason=f"the last {ineffective} remediations of this target were ineffective: human review")

    recent = [h for h in history if h.finished_at >= now - timedelta(seconds=cfg.oscillation_window_s)]
    if _oscillates(action, parameters, recent):
        until = now + timedelta(seconds=cfg.oscillation_window_s)
        return Block(rule="oscillation", until=until,
                     reason=f"{action} would reverse the previous changes of this target again (oscillation)")
    return None
