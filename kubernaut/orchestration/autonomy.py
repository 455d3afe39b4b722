"""Autonomy from evidence: run unattended only where this action measurably works for this kind of incident."""

from __future__ import annotations

import math

import asyncpg
from pydantic import BaseModel

TERMINAL_LIVE_OUTCOMES = ("completed", "failed", "rolled_back", "timed_out")


class Evidence(BaseModel):
    signature: str
    action: str
    successes: int
    cases: int
    lower_bound: float
    sufficient: bool
    explanation: str


def wilson_lower_bound(successes: int, cases: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval: a success rate we are ~97.5 % sure the truth exceeds."""
    if cases == 0:
        return 0.0
    p = successes / cases
    denominator = 1 + z * z / cases
    centre = p + z * z / (2 * cases)
    margin = z * math.sqrt(p * (1 - p) / cases + z * z / (4 * cases * cases))
    return max(0.0, (centre - margin) / denominator)


async def measure(conn: asyncpg.Connection | asyncpg.Pool, signature: str, action: str, min_cases: int,
                  min_lower_bound: float) -> Evidence:
    """Effectiveness assessments of ``action`` for this signature (intelligence), else workflow outcomes."""
    from kubernaut.intelligence.feedback import evidence_for

    try:
        measured = await evidence_for(conn, signature, action)
    except asyncpg.UndefinedTableError:  # a database without the learning tables yet
        measured = None
    if measured is not None and measured.cases > 0:
        sufficient = measured.cases >= min_cases and measured.lower_bound >= min_lower_bound
        return Evidence(signature=signature, action=action, successes=measured.successes, cases=measured.cases,
                        lower_bound=measured.lower_bound, sufficient=sufficient,
                        explanation=f"{measured.explanation} (needs ≥ {min_lower_bound:.2f} on ≥ {min_cases} "
                                    "cases)")
    return await _from_workflows(conn, signature, action, min_cases, min_lower_bound)


async def _from_workflows(conn: asyncpg.Connection | asyncpg.Pool, signature: str, action: str, min_cases: int,
                          min_lower_bound: float) -> Evidence:
    """Before any assessment exists: live (not dry-run) workflows that ran ``action`` for this signature."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE w.phase = 'completed') AS successes, count(*) AS cases
           FROM workflows w JOIN analyses a ON a.id = w.analysis_id
           WHERE NOT w.dry_run AND w.signature = $1 AND a.action = $2 AND w.phase = ANY($3::text[])""",
        signature, action, list(TERMINAL_LIVE_OUTCOMES),
    )
    successes, cases = row["successes"], row["cases"]
    bound = wilson_lower_bound(successes, cases)
    sufficient = cases >= min_cases and bound >= min_lower_bound
    explanation = (f"{action} for {signature}: {successes}/{cases} verified successes, "
                   f"Wilson lower bound {bound:.2f} (needs ≥ {min_lower_bound:.2f} on ≥ {min_cases} cases)")
    return Evidence(signature=signature, action=action, successes=successes, cases=cases, lower_bound=bound,
                    sufficient=sufficient, explanation=explanation)
