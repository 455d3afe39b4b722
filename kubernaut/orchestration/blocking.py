"""Blocking rules: cooldown, consecutive failures, ineffective chains, oscillation. Each block says
why and until when, and is recorded in ``blocks``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import asyncpg
from pydantic import BaseModel

from kubernaut.config.settings import OrchestrationConfig

FAILED_PHASES = ("failed", "rolled_back", "timed_out")
# Pairs that undo each other: alternating between them on one target is oscillation.
_OPPOSITES = {("cordon_node", "uncordon_node"), ("pause_rollout", "resume_rollout"),
              ("suspend_cronjob", "resume_cronjob"), ("taint_node", "remove_taint")}


class Block(BaseModel):
    rule: str
    reason: str
    until: datetime | None
    review: bool = False  # a human must look (not just wait)


async def _recent(conn: asyncpg.Connection, target_key: str, since: datetime) -> list[Any]:
    return await conn.fetch(
        """SELECT w.id, w.phase, w.finished_at, a.action, a.parameters
           FROM workflows w JOIN analyses a ON a.id = w.analysis_id
           WHERE w.target_key = $1 AND NOT w.dry_run AND w.finished_at IS NOT NULL AND w.finished_at >= $2
           ORDER BY w.finished_at DESC, w.id DESC LIMIT 50""",
        target_key, since,
    )


def _oscillates(action: str, parameters: dict[str, Any], history: list[Any]) -> bool:
    if action.startswith("scale_") and "replicas" in parameters:
        replicas = [h["parameters"].get("replicas") for h in history if h["action"] == action][:3]
        series = [r for r in reversed(replicas) if isinstance(r, int)] + [parameters["replicas"]]
        if len(series) >= 3:
            steps = [b - a for a, b in pairwise(series) if b != a]
            return len(steps) >= 2 and all(x * y < 0 for x, y in pairwise(steps))
    actions = [h["action"] for h in history[:3]]
    for a, b in _OPPOSITES:
        if action in (a, b):
            other = b if action == a else a
            if actions[:2] == [other, action]:
                return True
    return False


async def check(conn: asyncpg.Connection, cfg: OrchestrationConfig, target_key: str, action: str,
                parameters: dict[str, Any], now: datetime | None = None) -> Block | None:
    now = now or datetime.now(timezone.utc)
    window = max(cfg.cooldown_s, cfg.failure_block_s, cfg.oscillation_window_s)
    history = await _recent(conn, target_key, now - timedelta(seconds=window))

    same = [h for h in history if h["action"] == action]
    if same and same[0]["phase"] == "completed" and cfg.cooldown_s > 0:
        until = same[0]["finished_at"] + timedelta(seconds=cfg.cooldown_s)
        if until > now:
            return Block(rule="cooldown", until=until,
                         reason=f"{action} ran on this target at {same[0]['finished_at']:%H:%M:%S}; "
                                f"cooldown {cfg.cooldown_s:.0f}s")

    streak = 0
    for h in same:
        if h["phase"] not in FAILED_PHASES:
            break
        streak += 1
    if streak >= cfg.failure_block_after:
        until = same[0]["finished_at"] + timedelta(seconds=cfg.failure_block_s)
        if until > now:
            return Block(rule="consecutive-failures", until=until,
                         reason=f"{action} failed {streak} times in a row on this target")

    ineffective = 0
    for h in history:
        if h["phase"] not in FAILED_PHASES:
            break
        ineffective += 1
    if ineffective >= cfg.ineffective_chain:
        return Block(rule="ineffective-chain", until=None, review=True,
                     reason=f"the last {ineffective} remediations of this target were ineffective: human review")

    recent = [h for h in history if h["finished_at"] >= now - timedelta(seconds=cfg.oscillation_window_s)]
    if _oscillates(action, parameters, recent):
        until = now + timedelta(seconds=cfg.oscillation_window_s)
        return Block(rule="oscillation", until=until,
                     reason=f"{action} would reverse the previous changes of this target again (oscillation)")
    return None


async def record(conn: asyncpg.Connection, target_key: str, action: str, block: Block, workflow_id: int) -> None:
    await conn.execute(
        "INSERT INTO blocks (target_key, action, rule, reason, until, workflow_id) VALUES ($1,$2,$3,$4,$5,$6)",
        target_key, action, block.rule, block.reason, block.until, workflow_id,
    )
