"""notify_only: Take no action in the cluster; tell a human what was found and why nothing was done."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.grammar import SafeText
from kubernaut.execution.catalog.observe import ANY_KIND
from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.plan import Risk
from kubernaut.execution.catalog.spec import ActionSpec, Family
from kubernaut.models.resource import ResourceRef


class NotifyOnlyParams(ActionParams):
    """The reason is free text for humans; newlines allowed, other control characters not."""

    reason: SafeText = Field(
        default="",
        max_length=2000,
        description="Why no automatic action is taken, and what a human should look at.",
    )


def _plan_notify(target: ResourceRef, params: NotifyOnlyParams) -> list[str]:
    return [f"no Kubernetes API call; send a notification about {target} through the configured channels"]


SPEC = ActionSpec(
    name="notify_only",
    summary="Take no action in the cluster; tell a human what was found and why nothing was done.",
    params=NotifyOnlyParams,
    target_kinds=ANY_KIND,
    risk=Risk.LOW,
    mutates=False,
    when_to_use=(
        "No catalog action is safe or appropriate: GitOps-managed targets (fix in git), ResourceQuota "
        "blocks, unclear root cause, a human decision is needed, or the alert needs no remediation."
    ),
    when_not_to_use="Do not use to hide a clear, safe and approved remediation.",
    verification="The notification was delivered to at least one channel.",
    inverse_note="none needed: nothing is changed",
    rbac=(),
    planner=_plan_notify,
    dry_run="read-only: nothing to dry-run",
    family=Family.OBSERVE,
)
