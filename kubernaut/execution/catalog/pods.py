"""Actions on single Pods: the smallest blast radius, so usually the first thing to try."""

from __future__ import annotations

from pydantic import Field

from kubernaut.execution.catalog.params import ActionParams
from kubernaut.execution.catalog.rbac import RbacRule

POD_KINDS = ("Pod",)
GRACE_DESCRIPTION = "Seconds the containers get to shut down; omitted = the pod's terminationGracePeriodSeconds."


class RestartPodParams(ActionParams):
    """grace_period_seconds is bounded so a request cannot hold a lock on the target for hours."""

    grace_period_seconds: int | None = Field(default=None, ge=0, le=3600, description=GRACE_DESCRIPTION)






def _grace(params: RestartPodParams) -> str:
    if params.grace_period_seconds is None:
        return ""
    return f" gracePeriodSeconds={params.grace_period_seconds}"








_POD_READ = RbacRule("", "pods", ("get", "list", "watch"))

