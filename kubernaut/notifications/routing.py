"""Which receivers a notification goes to: the route tree of ``notifications.route`` (AlertManager's semantics,
see :mod:`kubernaut.config.notifications`), and the event type a stored notification event stands for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

from kubernaut.config.notifications import DEFAULT_RECEIVER, RouteConfig, RouteMatch

# The stored events (kubernaut.orchestration.messages, kubernaut.processing.intake, the escalation job) → types.
_EVENT_TYPES = {
    "approval.requested": "approval_requested",
    "approval.decided": "approval_decided",
    "approval.escalated": "escalated",
    "approval.reminder": "escalated",
    "approval.expired": "expired",
    "workflow.failed": "failed",
    "workflow.rolled_back": "rolled_back",
    "workflow.timed_out": "expired",  # an approval expired without a decision (kubernaut.orchestration.engine)
    "workflow.blocked": "escalated",
    "workflow.denied": "escalated",
    "workflow.review": "escalated",
    "workflow.cancelled": "cancelled",
    "incident.resolved": "resolved",
    "incident.escalated": "escalated",  # an alert from a cluster the fleet does not know (processing/intake)
    "action.ineffective": "ineffective",
}
#: Incident phases a completed workflow can leave (kubernaut.orchestration.engine, ``_finish``).
_COMPLETED = {"remediated": "remediated", "escalated": "escalated", "dry_run_completed": "remediated"}


def event_type(event: str, incident_phase: str | None = None) -> str:
    """The route-matchable type of a stored notification event."""
    if event == "workflow.completed":
        return _COMPLETED.get(incident_phase or "", "remediated")
    return _EVENT_TYPES.get(event, "other")


class RoutingFacts(BaseModel):
    """What a route can match: the incident's facts and the event type."""

    model_config = ConfigDict(frozen=True)

    incident: int | None = None
    namespace: str | None = None
    cluster: str | None = None
    environment: str | None = None
    severity: str | None = None
    priority: str | None = None
    risk: str | None = None
    event: str = "other"


@dataclass(frozen=True)
class Delivery:
    """One receiver chosen for a notification, with the grouping of the route that chose it."""

    receiver: str
    group_key: str
    repeat_interval_s: float


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


def matches(match: RouteMatch, facts: RoutingFacts) -> bool:
    for name, accepted in match:
        if accepted is None:
            continue
        value = getattr(facts, name)
        # A fact the notification does not have (a notification without incident, an action without risk) matches
        # no constraint on it: a route for ns/payments must not take notifications that have no namespace.
        if value is None or not any(_regex(p).fullmatch(str(value)) for p in accepted):
            return False
    return True


def route(tree: RouteConfig, facts: RoutingFacts) -> list[Delivery]:
    """The receivers of ``facts``, each once, in the order the tree names them."""
    chosen: list[Delivery] = []
    _walk(tree, facts, tree.receivers or [DEFAULT_RECEIVER], chosen)
    seen: set[str] = set()
    unique = []
    for delivery in chosen:
        if delivery.receiver not in seen:
            seen.add(delivery.receiver)
            unique.append(delivery)
    return unique


def _walk(node: RouteConfig, facts: RoutingFacts, inherited: list[str], chosen: list[Delivery]) -> None:
    receivers = node.receivers or inherited
    matched_child = False
    for child in node.routes:
        if not matches(child.match, facts):
            continue
        matched_child = True
        _walk(child, facts, receivers, chosen)
        if not child.continue_:
            break
    if not matched_child:
        key = group_key(node.group_by, facts)
        chosen.extend(Delivery(r, key, node.repeat_interval_s) for r in receivers)


def group_key(group_by: list[str], facts: RoutingFacts) -> str:
    """The group a notification belongs to for ``repeat_interval_s``; always per event type."""
    fields = sorted(set(group_by) | {"event"})
    return ",".join(f"{name}={getattr(facts, name)}" for name in fields)
