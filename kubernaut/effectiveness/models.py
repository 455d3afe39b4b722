"""What an assessment measures and concludes; these cross the deployment boundary as plain dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# reverted_by_gitops: a GitOps controller put the spec back to Git's value after the live action (issue 15):
# neither a success nor a failure of the action, and never counted as "ineffective" by learning.
Verdict = Literal["effective", "ineffective", "inconclusive", "reverted_by_gitops"]


class Component(BaseModel):
    """One measured aspect. ``value`` None means "not measured" (not configured, not applicable, unknown)."""

    name: Literal["health", "alert", "metrics", "drift"]
    value: float | None = None
    reason: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ContainerState(BaseModel):
    name: str
    ready: bool
    restarts: int
    waiting_reason: str | None = None
    last_terminated_reason: str | None = None
    last_terminated_at: datetime | None = None


class PodState(BaseModel):
    uid: str
    name: str
    created_at: datetime | None = None
    ready: bool
    phase: str | None = None
    containers: list[ContainerState] = Field(default_factory=list)

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)


class TargetState(BaseModel):
    """The target as the API server shows it now."""

    exists: bool
    kind: str
    spec_hash: str | None = None
    generation: int | None = None
    # Field managers that wrote the object and when, newest first (who changed it, for the drift reason).
    managers: list[tuple[str, datetime]] = Field(default_factory=list)
    desired: int | None = None  # replicas wanted (None: not a replicated workload)
    pods: list[PodState] = Field(default_factory=list)
    node_ready: bool | None = None  # Node targets
    supported: bool = True  # False: no health rule for this kind


class Assessment(BaseModel):
    action_id: int
    status: Literal["pending", "done", "expired"]
    verdict: Verdict | None = None
    score: float | None = None
    components: dict[str, Component] = Field(default_factory=dict)
    reasons: list[str] = Field(default_factory=list)
