"""What the analysis decides: a catalog action on a target, with why and how sure."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from kubernaut.models.finding import Finding
from kubernaut.models.resource import ResourceRef


class Alternative(BaseModel):
    action: str
    reason: str
    score: float = Field(ge=0, le=1)


class ToolCallRecord(BaseModel):
    """One read-only tool call of the LLM's investigation (kubernaut/analysis/tools), as recorded."""

    tool: str
    arguments: dict[str, Any] | str = Field(description="as the model sent them (clipped; a string if not JSON)")
    outcome: str = Field(description="ok | error | refused | unknown | repeated | timeout")
    size: int = Field(default=0, description="characters of output before the cap")
    truncated: bool = False
    latency_ms: float = 0.0
    detail: str | None = None


class LLMUsage(BaseModel):
    """What the LLM path cost for one analysis (recorded whether or not the LLM's answer was used)."""

    provider: str
    model: str = Field(description="the model whose answer was used, else the last one asked")
    models: list[str] = Field(default_factory=list, description="every model asked, in order (escalation)")
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float | None = Field(default=None, description="estimate from configured prices; None if unknown")
    escalated: bool = False
    response_format: str | None = None
    # The tool-using investigation before the decision (analysis.llm_tools), when it ran.
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    investigation: str | None = Field(default=None, description="how the investigation ended, or why it did not run")


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
    llm: LLMUsage | None = None
    # Why an LLM answer was rejected when it tried to leave the catalog, the target's scope or a guard:
    # possible prompt injection, kept for review.
    flags: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict, description="observed conditions the decision used")
    findings: list[Finding] = Field(default_factory=list,
                                    description="the diagnosis: what the evidence shows, and what is the cause")
    justified_by: str | None = Field(default=None, description="the finding that justifies a mutating action")
