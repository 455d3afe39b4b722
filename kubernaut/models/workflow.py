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
    # Set when this request undoes a recorded action (the `inverse` of its result): the executor
    # checks the request against that record and restores the recorded before-state, which an
    # ordinary request may not do (e.g. lower a limit, tighten a PDB); cooldown does not count it
    # as a repeat. Every other safety check applies.
    inverse_of: int | None = None
    # The cluster of the incident (issue 16); None: the home cluster. The executor acts there or nowhere.
    cluster: str | None = Field(default=None, max_length=63)


class ActionResult(BaseModel):
    action_id: int
    status: ActionStatus
    dry_run: bool
    plan: list[str] = Field(default_factory=list)
    diff: str | None = None
    message: str
    error: str | None = None
    # {action, target, parameters, inverse_of}: submit as a new ActionRequest to undo this action.
    inverse: dict[str, Any] | None = None
    # True when the same request may succeed later (cooldown, lock, budget, PDB, API unreachable).
    retryable: bool = False
    # What shows the action worked (the catalog's hint); verify(action_id) checks it live.
    verification: str = ""
    # Where the pipeline stopped: validation, scope, cooldown, lock, budget, preconditions, dry_run,
    # execute, done.
    stage: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


class NotificationRequest(BaseModel):
    incident_id: int | None = None
    event: str = Field(max_length=64)
    title: str = Field(max_length=250)
    body: str = Field(max_length=20_000)
    severity: Literal["info", "success", "warning", "failure"] = "info"
