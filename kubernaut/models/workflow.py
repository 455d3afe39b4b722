"""Requests and results crossing the orchestrator → executor → notifier handles."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kubernaut.models.resource import ResourceRef

ActionStatus = Literal["planned", "dry_run", "refused", "succeeded", "failed"]


class ActionRequest(BaseModel):
    workflow_id: int
    incident_id: int
    action: str
    target: ResourceRef
    parameters: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str = Field(min_length=8, max_length=200)
    dry_run: bool = True


class ActionResult(BaseModel):
    action_id: int
    status: ActionStatus
    dry_run: bool
    plan: list[str] = Field(default_factory=list)
    diff: str | None = None
    message: str
    error: str | None = None


class NotificationRequest(BaseModel):
    incident_id: int | None = None
    event: str = Field(max_length=64)
    title: str = Field(max_length=250)
    body: str = Field(max_length=20_000)
    severity: Literal["info", "success", "warning", "failure"] = "info"
