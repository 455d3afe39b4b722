"""The learning report behind ``GET /api/v1/patterns``: mined statistics, patterns and mining progress, as JSON-ready
dicts (the feedback the other deployments act on is kubernaut/intelligence/feedback.py)."""

from __future__ import annotations

from typing import Any

import asyncpg

from kubernaut.models.stats import wilson_lower_bound
from kubernaut.storage import incident_embeddings, learning, patterns


async def action_stats(pool: asyncpg.Pool, limit: int = 100) -> list[dict[str, Any]]:
    """Per (signature, action): executions, verdicts, success rate with its Wilson lower bound, mean score,
    MTTR, and how often the analysis chose it in the last 30 days."""
    rows = await learning.stats(pool, limit)
    chosen = await learning.chosen_last_30_days(pool)
    out = []
    for r in rows:
        cases = r.effective + r.ineffective
        out.append({
            "signature": r.signature, "alertname": r.alertname, "target_kind": r.target_kind,
            "action": r.action, "chosen_30d": chosen.get((r.signature, r.action), 0),
            "executions": r.executions, "effective": r.effective, "ineffective": r.ineffective,
            "inconclusive": r.executions - cases,
            "success_rate": round(r.effective / cases, 4) if cases else None,
            "lower_bound": round(wilson_lower_bound(r.effective, cases), 4),
            "mean_score": round(r.score_sum / r.scored, 4) if r.scored else None,
            "mttr_s": round(r.recovery_s_sum / r.recoveries, 1) if r.recoveries and r.recovery_s_sum is not None
            else None,
            "last_at": r.last_at,
        })
    return out


async def patterns_report(pool: asyncpg.Pool, limit: int = 100) -> dict[str, Any]:
    """Everything for ``GET /api/v1/patterns``: action statistics, up to ``limit`` patterns per kind, mining
    progress per task and how many incidents are embedded."""
    found: dict[str, list[dict[str, Any]]] = {kind: [] for kind in ("recurring", "oscillation", "ineffective_chain",
                                                                    "harmful")}
    for p in await patterns.top(pool, limit):
        found[p.kind].append(p.model_dump(exclude={"kind"}))
    state = {t.task: t.model_dump(exclude={"task"}) for t in await learning.tasks(pool)}
    return {"action_stats": await action_stats(pool, limit), **found, "mining": state,
            "incident_embeddings": await incident_embeddings.count(pool)}
