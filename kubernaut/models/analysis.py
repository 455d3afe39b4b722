"""What the analysis decides: a catalog action on a target, with why and how sure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kubernaut.models.resource import ResourceRef


class Alternative(BaseModel):
    action: str
    reason: str
    score: float = Field(ge=0, le=1)


class AnalysisResult(BaseModel):
    """External tests rely on these field names (see the AI analysis issue)."""

    incident_id: int | None = None
    action: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    target: ResourceRef
    confidence: float = Field(ge=0, le=1)
    engine: str = Field(description="'rules' or 'llm:<model>'")
    root_cause: str
    alternatives: list[Alternative] = Field(default_factory=list)
    rule_id: str | None = None
    reasoning: list[str] = Field(default_factory=list)
    fallback_reason: str | None = None
