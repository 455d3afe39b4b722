"""Non-mutating actions. They exist in the catalog so that "look closer" and "tell a human" are
choices the analysis can make explicitly, instead of inventing a mutation when unsure."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.base import (
    ActionParams,
    ActionSpec,
    CatalogError,
    RbacRule,
    Risk,
    SafeText,
    ref,
)
from kubernaut.models.resource import ResourceRef

ANY_KIND = ("*",)
# Their content would land in storage and LLM prompts; the executor has no RBAC to read them anyway.
UNREADABLE_KINDS = frozenset({"Secret"})


class CollectDiagnosticsParams(ActionParams):
    """tail_lines is capped: logs are untrusted, large, and end up in storage and LLM prompts."""

    include_events: bool = Field(default=True, description="Events about the target and its pods.")
    include_logs: bool = Field(default=True, description="Container logs of the target's pods (current and previous).")
    tail_lines: int = Field(default=200, ge=1, le=2000, description="Log lines per container.")


class NotifyOnlyParams(ActionParams):
    """The reason is free text for humans; newlines allowed, other control characters not."""

    reason: SafeText = Field(
        default="",
        max_length=2000,
        description="Why no automatic action is taken, and what a human should look at.",
    )


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


def _plan_notify(target: ResourceRef, params: NotifyOnlyParams) -> list[str]:
    return [f"no Kubernetes API call; send a notification about {target} through the configured channels"]


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec(
        name="collect_diagnostics",
        summary=("Gather the target's spec, status, events and recent logs onto the incident; changes nothing."),
        params=CollectDiagnosticsParams,
        target_kinds=ANY_KIND,
        risk=Risk.LOW,
        mutates=False,
        sensitive=False,
        preconditions=("read access to the target's namespace",),
        when_to_use=(
            "The cause is unclear and more evidence is needed before choosing a remediation, or a human "
            "will want the state captured before it changes (pods about to be replaced)."
        ),
        when_not_to_use=(
            "Not a remediation: when the fix is clear and safe, choose it (diagnostics are captured anyway)."
        ),
        verification="The incident holds a diagnostics bundle with the requested parts.",
        inverse=None,
        inverse_note="none needed: nothing is changed",
        rbac=(
            RbacRule("", "pods", ("get", "list")),
            RbacRule("", "pods/log", ("get",)),
            RbacRule("", "events", ("list",)),
            RbacRule("events.k8s.io", "events", ("list",)),
            RbacRule("", "nodes", ("get", "list")),
            RbacRule("", "persistentvolumeclaims", ("get", "list")),
            RbacRule("", "services", ("get", "list")),
            *(
                RbacRule("apps", resource, ("get", "list"))
                for resource in ("deployments", "statefulsets", "daemonsets", "replicasets")
            ),
            RbacRule("batch", "jobs", ("get", "list")),
            RbacRule("batch", "cronjobs", ("get", "list")),
            RbacRule("autoscaling", "horizontalpodautoscalers", ("get", "list")),
            RbacRule("policy", "poddisruptionbudgets", ("get", "list")),
            RbacRule("networking.k8s.io", "networkpolicies", ("get", "list")),
        ),
        planner=_plan_collect,
        check=_check_collect,
        dry_run="read-only: nothing to dry-run",
    ),
    ActionSpec(
        name="notify_only",
        summary="Take no action in the cluster; tell a human what was found and why nothing was done.",
        params=NotifyOnlyParams,
        target_kinds=ANY_KIND,
        risk=Risk.LOW,
        mutates=False,
        sensitive=False,
        preconditions=(),
        when_to_use=(
            "No catalog action is safe or appropriate: GitOps-managed targets (fix in git), ResourceQuota "
            "blocks, unclear root cause, a human decision is needed, or the alert needs no remediation."
        ),
        when_not_to_use="Do not use to hide a clear, safe and approved remediation.",
        verification="The notification was delivered to at least one channel.",
        inverse=None,
        inverse_note="none needed: nothing is changed",
        rbac=(),
        planner=_plan_notify,
        dry_run="read-only: nothing to dry-run",
    ),
)
