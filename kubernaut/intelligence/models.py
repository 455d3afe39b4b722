"""What the learning loop hands back to its consumers (orchestrator, rule engine, analysis, API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ActionEvidence(BaseModel):
    """Measured outcomes of one action for one signature (``"{alertname}:{target kind}"``)."""

    signature: str
    action: str
    executions: int = 0  # assessed live executions
    successes: int = 0  # verdict effective
    failures: int = 0  # verdict ineffective
    inconclusive: int = 0
    cases: int = 0  # successes + failures: what the bound is computed on
    success_rate: float | None = None
    lower_bound: float = 0.0  # Wilson score interval, 95 %
    mean_score: float | None = None
    mttr_s: float | None = None  # mean time from the incident's first alert to recovery
    last_at: datetime | None = None
    explanation: str = ""
    # In a fleet: the other clusters' record of this (signature, action), weighed as at most
    # ClusterScope.prior_cases cases (a weaker prior than this cluster's own). 0 on a single cluster.
    fleet_successes: float = 0.0
    fleet_cases: float = 0.0


class ClusterScope(BaseModel):
    """Whose outcomes count first: the incident's cluster, with the rest of the fleet as a prior."""

    model_config = ConfigDict(frozen=True)

    cluster: str
    home: str  # incidents from before the fleet (cluster NULL) are the home cluster's
    prior_cases: float = 2.0  # the other clusters' record counts as at most this many cases


class RankedAction(BaseModel):
    action: str
    rank: int
    value: float  # posterior-style success estimate used for ordering
    evidence: ActionEvidence
    similar_successes: float = 0.0  # similarity-weighted outcomes of neighbours that took this action
    similar_failures: float = 0.0
    harmful: bool = False
    reason: str


class IncidentContext(BaseModel):
    incident_id: int
    signature: str
    target_key: str
    target_history: list[dict[str, Any]] = Field(default_factory=list)
    similar: list[dict[str, Any]] = Field(default_factory=list)
    what_worked: list[dict[str, Any]] = Field(default_factory=list)
    action_stats: list[ActionEvidence] = Field(default_factory=list)
    patterns: list[dict[str, Any]] = Field(default_factory=list)
    summary: list[str] = Field(default_factory=list)  # one line per finding, for prompts and humans
