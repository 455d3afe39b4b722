"""The route tree (issue 13, section 3), table-driven: which receivers each notification reaches."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from kubernaut.config import load_config
from kubernaut.config.notifications import RouteConfig
from kubernaut.notifications.routing import RoutingFacts, event_type, group_key, route

TREE = RouteConfig.model_validate({
    "receivers": ["default"],
    "routes": [
        # Escalations and expiries page, and go on to the routes below.
        {"match": {"event": ["escalated", "expired"]}, "receivers": ["pagerduty"], "continue": True},
        # Payments: approvals to the team's Slack channel, the rest of production to its mail.
        {"match": {"namespace": ["payments"]}, "receivers": ["payments-slack"], "routes": [
            {"match": {"event": ["approval_requested"]}, "receivers": ["payments-slack", "payments-teams"]},
            {"match": {"environment": ["staging"]}, "receivers": ["payments-mail"]},
        ]},
        {"match": {"namespace": ["team-*"], "severity": ["critical"], "priority": ["P0", "P1"]},
         "receivers": ["teams-oncall"]},
        {"match": {"risk": ["high", "critical"], "cluster": ["prod-*"]}, "receivers": ["risk-review"]},
    ],
})


def facts(**kw: str) -> RoutingFacts:
    return RoutingFacts(**{"incident": 1, "namespace": "shop", "cluster": "local", "environment": "production",
                           "severity": "warning", "priority": "P2", "risk": "medium", "event": "remediated", **kw})


@pytest.mark.parametrize(("case", "notification", "receivers"), [
    ("nothing matches: the root's receiver", facts(), ["default"]),
    ("a child takes it", facts(namespace="payments"), ["payments-slack"]),
    ("a grandchild takes it", facts(namespace="payments", event="approval_requested"),
     ["payments-slack", "payments-teams"]),
    ("first matching grandchild only", facts(namespace="payments", environment="staging"), ["payments-mail"]),
    ("continue: escalation pages and the next route still applies", facts(namespace="payments", event="escalated"),
     ["pagerduty", "payments-slack"]),
    ("continue with no later match: only the paging route (no fallback to the root)", facts(event="expired"),
     ["pagerduty"]),
    ("glob and several fields, all must match", facts(namespace="team-a", severity="critical", priority="P1"),
     ["teams-oncall"]),
    ("one field off: not matched", facts(namespace="team-a", severity="critical", priority="P3"), ["default"]),
    ("risk and cluster", facts(risk="critical", cluster="prod-eu"), ["risk-review"]),
    ("a fact the notification lacks matches no constraint on it", facts(risk=None, cluster="prod-eu"),
     ["default"]),
    ("no namespace (cluster-scoped): namespace routes do not take it", facts(namespace=None), ["default"]),
])
def test_route_tree(case: str, notification: RoutingFacts, receivers: list[str]) -> None:
    assert [d.receiver for d in route(TREE, notification)] == receivers, case


def test_the_default_tree_is_todays_behaviour() -> None:
    """No routes configured: every notification, whatever it is, goes to the default receivers."""
    config = load_config({"notifications": {"urls": ["json://127.0.0.1:9/x"]}})
    for event in ("approval_requested", "escalated", "remediated", "failed"):
        assert [d.receiver for d in route(config.notifications.route, facts(event=event))] == ["default"]


def test_group_by_and_repeat_interval_come_from_the_route_that_chose() -> None:
    tree = RouteConfig.model_validate({"routes": [
        {"match": {"event": ["failed"]}, "receivers": ["mail"], "group_by": ["namespace"], "repeat_interval_s": 600}]})
    (chosen,) = route(tree, facts(event="failed"))
    assert (chosen.receiver, chosen.repeat_interval_s) == ("mail", 600)
    # Two incidents in one namespace are one group; the event type is always part of it.
    assert chosen.group_key == group_key(["namespace"], facts(event="failed", incident=2))
    assert chosen.group_key != group_key(["namespace"], facts(event="rolled_back"))
    (default,) = route(tree, facts(event="remediated"))
    assert (default.receiver, default.repeat_interval_s) == ("default", 0)
    assert default.group_key == "event=remediated,incident=1"


@pytest.mark.parametrize(("event", "phase", "expected"), [
    ("approval.requested", None, "approval_requested"),
    ("workflow.completed", "remediated", "remediated"),
    ("workflow.completed", "escalated", "escalated"),
    ("workflow.failed", "action_failed", "failed"),
    ("workflow.rolled_back", None, "rolled_back"),
    ("workflow.timed_out", "escalated", "expired"),
    ("approval.escalated", None, "escalated"),
    ("incident.resolved", None, "resolved"),
    ("something.new", None, "other"),
])
def test_stored_events_map_to_route_event_types(event: str, phase: str | None, expected: str) -> None:
    assert event_type(event, phase) == expected


@pytest.mark.parametrize(("notifications", "error"), [
    ({"route": {"routes": [{"receivers": ["nobody"]}]}}, "unknown receiver(s) ['nobody']"),
    ({"route": {"routes": [{"match": {"event": ["approved"]}}]}}, "matches no event type"),
    ({"receivers": [{"name": "a"}, {"name": "a"}]}, "named twice"),
    ({"receivers": [{"name": "s", "slack_channel": "C1"}]}, "slack.bot_token is not set"),
    ({"route": {"routes": [{"match": {"colour": ["red"]}}]}}, "colour"),
])
def test_bad_routing_configuration_is_refused_at_start(notifications: dict, error: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(error)):
        load_config({"notifications": notifications})
