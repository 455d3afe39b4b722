"""notify_only: Take no action in the cluster; tell a human what was found and why nothing was done."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.declaration import declared
from kubernaut.execution.catalog.grammar import SafeText
from kubernaut.execution.catalog.params import ActionParams
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


SPEC = declared(__name__, params=NotifyOnlyParams, planner=_plan_notify)
