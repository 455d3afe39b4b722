"""A normalized signal: one alert as the processor sees it, whatever its source."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from kubernaut.models.resource import ResourceRef

Severity = Literal["critical", "high", "warning", "info", "unknown"]
Priority = Literal["P0", "P1", "P2", "P3"]
Environment = Literal["production", "staging", "development", "test", "unknown"]


class Signal(BaseModel):
    alert_id: int
    alertname: str
    status: Literal["firing", "resolved"]
    severity: Severity = "unknown"
    raw_severity: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    am_fingerprint: str
    # The cluster the alert is about (the fleet's cluster label, else the home cluster); None: not yet known.
    cluster: str | None = None


class TargetResolution(BaseModel):
    """Which workload a signal is about, and how we know (recorded for explainability)."""

    target: ResourceRef
    source: Literal["kubernetes", "labels"]
    chain: list[str] = Field(default_factory=list, description="Owner chain walked, e.g. Pod→ReplicaSet→Deployment")
    fingerprint: str


class Classification(BaseModel):
    environment: Environment
    environment_rule: str
    severity: Severity
    severity_rule: str
    priority: Priority
    priority_rule: str
