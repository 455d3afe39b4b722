"""Autonomy from evidence: run unattended only where this action measurably works for this kind of incident."""

from __future__ import annotations

import asyncpg
from pydantic import BaseModel, ConfigDict

from kubernaut.intelligence.feedback import evidence_for
from kubernaut.intelligence.models import ActionEvidence, ClusterScope
from kubernaut.models.stats import wilson_lower_bound
from kubernaut.storage import workflows
from kubernaut.storage.workflows import TERMINAL_LIVE_OUTCOMES, OutcomeCounts

__all__ = ["TERMINAL_LIVE_OUTCOMES", "Evidence", "from_assessments", "from_workflows", "measure",
           "wilson_lower_bound"]


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True)

    signature: str
    action: str
    successes: int
    cases: int
    lower_bound: float
    sufficient: bool
    explanation: str


def from_assessments(measured: ActionEvidence, min_cases: int, min_lower_bound: float) -> Evidence:
    """The gate on effectiveness assessments (intelligence's measured record)."""
    # min_cases counts this cluster's own cases: the rest of the fleet informs the bound, it never makes up
    # for a record this cluster does not have.
    sufficient = measured.cases >= min_cases and measured.lower_bound >= min_lower_bound
    return Evidence(signature=measured.signature, action=measured.action, successes=measured.successes,
                    cases=measured.cases, lower_bound=measured.lower_bound, sufficient=sufficient,
                    explanation=f"{measured.explanation} (needs ≥ {min_lower_bound:.2f} on ≥ {min_cases} cases)")


def from_workflows(signature: str, action: str, counts: OutcomeCounts, min_cases: int,
                   min_lower_bound: float) -> Evidence:
    """Before any assessment exists: the gate on live (not dry-run) workflows that ran ``action`` for this
    signature, completed counting as success."""
    successes, cases = counts.successes, counts.cases
    bound = wilson_lower_bound(successes, cases)
    sufficient = cases >= min_cases and bound >= min_lower_bound
    explanation = (f"{action} for {signature}: {successes}/{cases} verified successes, "
                   f"Wilson lower bound {bound:.2f} (needs ≥ {min_lower_bound:.2f} on ≥ {min_cases} cases)")
    return Evidence(signature=signature, action=action, successes=successes, cases=cases, lower_bound=bound,
                    sufficient=sufficient, explanation=explanation)


async def measure(conn: asyncpg.Connection | asyncpg.Pool, signature: str, action: str, min_cases: int,
                  min_lower_bound: float, scope: ClusterScope | None = None) -> Evidence:
    """Effectiveness assessments of ``action`` for this signature (intelligence), else workflow outcomes.
    With a ``scope`` (a fleet): the scope's cluster's outcomes, the other clusters' as a weaker prior."""
    try:
        measured = await evidence_for(conn, signature, action, scope)
    except asyncpg.UndefinedTableError:  # a database without the learning tables yet
        measured = None
    if measured is not None and measured.cases > 0:
        return from_assessments(measured, min_cases, min_lower_bound)
    if scope is None:
        counts = await workflows.outcome_counts(conn, signature, action)
    else:
        counts = await workflows.outcome_counts(conn, signature, action, cluster=scope.cluster, home=scope.home)
    return from_workflows(signature, action, counts, min_cases, min_lower_bound)
