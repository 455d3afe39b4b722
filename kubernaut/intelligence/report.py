"""Reads behind ``GET /api/v1/patterns``: mined statistics and patterns, as plain dicts."""

from __future__ import annotations

from typing import Any

import asyncpg

from kubernaut.orchestration.autonomy import wilson_lower_bound

_STATS_SQL = """
WITH tail AS (
    SELECT signature, action, min(alertname) AS alertname, min(target_kind) AS target_kind, count(*) AS executions,
           count(*) FILTER (WHERE verdict = 'effective') AS effective,
           count(*) FILTER (WHERE verdict = 'ineffective') AS ineffective,
           coalesce(sum(score), 0) AS score_sum, count(score) AS scored, max(action_at) AS last_at
    FROM mining_inbox q JOIN assessments a ON a.id = q.assessment_id GROUP BY signature, action
)
SELECT coalesce(s.signature, t.signature) AS signature, coalesce(s.action, t.action) AS action,
       coalesce(s.alertname, t.alertname) AS alertname, coalesce(s.target_kind, t.target_kind) AS target_kind,
       coalesce(s.executions, 0) + coalesce(t.executions, 0) AS executions,
       coalesce(s.effective, 0) + coalesce(t.effective, 0) AS effective,
       coalesce(s.ineffective, 0) + coalesce(t.ineffective, 0) AS ineffective,
       coalesce(s.score_sum, 0) + coalesce(t.score_sum, 0) AS score_sum,
       coalesce(s.scored, 0) + coalesce(t.scored, 0) AS scored,
       s.recovery_s_sum, s.recoveries, GREATEST(s.last_at, t.last_at) AS last_at
FROM action_stats s FULL JOIN tail t ON t.signature = s.signature AND t.action = s.action
ORDER BY executions DESC, signature, action LIMIT $1
"""

# How often the analysis chose each action (dry-run included): what the statistics are measured against.
_CHOSEN_SQL = """
SELECT coalesce(i.signals[1], 'unknown') || ':' || i.target_kind AS signature, a.action, count(*) AS chosen
FROM analyses a JOIN incidents i ON i.id = a.incident_id
WHERE a.created_at > now() - interval '30 days'
GROUP BY 1, 2
"""


async def action_stats(pool: asyncpg.Pool, limit: int = 100) -> list[dict[str, Any]]:
    """Per (signature, action): executions, verdicts, success rate with its Wilson lower bound, mean score,
    MTTR, and how often the analysis chose it in the last 30 days."""
    rows = await pool.fetch(_STATS_SQL, limit)
    chosen = {(r["signature"], r["action"]): r["chosen"] for r in await pool.fetch(_CHOSEN_SQL)}
    out = []
    for r in rows:
        cases = r["effective"] + r["ineffective"]
        out.append({
            "signature": r["signature"], "alertname": r["alertname"], "target_kind": r["target_kind"],
            "action": r["action"], "chosen_30d": chosen.get((r["signature"], r["action"]), 0),
            "executions": r["executions"], "effective": r["effective"], "ineffective": r["ineffective"],
            "inconclusive": r["executions"] - cases,
            "success_rate": round(r["effective"] / cases, 4) if cases else None,
            "lower_bound": round(wilson_lower_bound(r["effective"], cases), 4),
            "mean_score": round(r["score_sum"] / r["scored"], 4) if r["scored"] else None,
            "mttr_s": round(r["recovery_s_sum"] / r["recoveries"], 1) if r["recoveries"] else None,
            "last_at": r["last_at"],
        })
    return out


async def patterns(pool: asyncpg.Pool, limit: int = 100) -> dict[str, Any]:
    found: dict[str, list[dict[str, Any]]] = {"recurring": [], "oscillation": [], "ineffective_chain": [],
                                              "harmful": []}
    rows = await pool.fetch(
        """SELECT * FROM (SELECT kind, key, count, detail, first_at, last_at, updated_at,
                                 row_number() OVER (PARTITION BY kind ORDER BY count DESC, last_at DESC NULLS LAST) AS n
                          FROM patterns) p WHERE n <= $1 ORDER BY kind, n""", limit)
    for r in rows:
        found[r["kind"]].append({k: r[k] for k in ("key", "count", "detail", "first_at", "last_at", "updated_at")})
    state = {r["task"]: {k: r[k] for k in ("round", "cursor", "detail", "started_at", "finished_at")}
             for r in await pool.fetch("SELECT * FROM mining_state")}
    embedded = await pool.fetchval("SELECT count(*) FROM incident_embeddings")
    return {"action_stats": await action_stats(pool, limit), **found, "mining": state, "incident_embeddings": embedded}
