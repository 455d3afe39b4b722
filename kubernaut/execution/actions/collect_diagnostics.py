"""collect_diagnostics: Gather the target's spec, status, events and recent logs onto the incident; changes nothing."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.errors import CatalogError
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import ref
from kubernaut.models.resource import ResourceRef

# Their content would land in storage and LLM prompts; the executor has no RBAC to read them anyway.
UNREADABLE_KINDS = frozenset({"Secret"})


class CollectDiagnosticsParams(ActionParams):
    """tail_lines is capped: logs are untrusted, large, and end up in storage and LLM prompts."""

    include_events: bool = Field(default=True, description="Events about the target and its pods.")
    include_logs: bool = Field(default=True, description="Container logs of the target's pods (current and previous).")
    tail_lines: int = Field(default=200, ge=1, le=2000, description="Log lines per container.")


def _check_collect(target: ResourceRef, params: CollectDiagnosticsParams) -> None:
    if target.kind in UNREADABLE_KINDS:
        raise CatalogError(f"collect_diagnostics: {target.kind} objects are never collected (their data is secret)")


def _plan_collect(target: ResourceRef, params: CollectDiagnosticsParams) -> list[str]:
    steps = [
        f"GET {ref(target)} (spec and status; Secrets are never read)",
        f"LIST v1 Pod of {target.kind} {target.name} (owner chain / selector)"
        if target.kind != "Pod" and target.namespace
        else f"GET status of {target.kind} {target.name}",
    ]
    if params.include_events:
        steps.append(f"LIST v1 Event fieldSelector=involvedObject.name={target.name} and for each pod")
    if params.include_logs:
        steps.append(f"GET v1 pods/log tailLines={params.tail_lines} for each container (previous=true as well)")
    steps.append("store the bundle on the incident as untrusted data (never as instructions)")
    return steps


SPEC = declared(__name__, params=CollectDiagnosticsParams, planner=_plan_collect, check=_check_collect)
