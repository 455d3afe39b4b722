"""Where notifications go (``notifications.*``): receivers, the route tree, the Slack app and escalation.

A route tree works like AlertManager's: the root route's children are tried in order; the first that matches
takes the notification (and so do the following ones while a matching route says ``continue``); when no child
matches, the route itself does. Every field of ``match`` is a list of accepted values (shell-style patterns);
an absent field matches anything. Without receivers and routes the tree is today's behaviour: everything to
the ``default`` receiver (``notifications.urls`` and, with a Slack app, ``slack.channel``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: What happened, as routes match it (``match.event``); the notification's stored event maps to one.
EVENT_TYPES = ("approval_requested", "approval_decided", "remediated", "failed", "rolled_back", "escalated",
               "ineffective", "expired", "resolved", "cancelled", "other")
#: The facts a route can match on (and group by), besides ``incident``.
MATCH_FIELDS = ("namespace", "cluster", "environment", "severity", "priority", "risk", "event")

DEFAULT_RECEIVER = "default"

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Pattern = Annotated[str, Field(min_length=1, max_length=253)]


class ReceiverConfig(BaseModel):
    """One named receiver: apprise URLs (Teams, email, PagerDuty, webhooks …) and/or a Slack app channel."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    urls: list[SecretStr] = Field(default_factory=list)
    # A channel id (C0123…) or name the Slack app posts to: Block Kit approvals with buttons, one thread per incident.
    slack_channel: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[#A-Za-z0-9_.-]+$")


class RouteMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: list[Pattern] | None = None
    cluster: list[Pattern] | None = None
    environment: list[Pattern] | None = None
    severity: list[Pattern] | None = None
    priority: list[Pattern] | None = None
    risk: list[Pattern] | None = None
    event: list[Pattern] | None = None

    @field_validator("event")
    @classmethod
    def _known_events(cls, value: list[str] | None) -> list[str] | None:
        for pattern in value or ():
            if not any(re.fullmatch(_glob(pattern), event) for event in EVENT_TYPES):
                raise ValueError(f"event {pattern!r} matches no event type; known: {list(EVENT_TYPES)}")
        return value


class RouteConfig(BaseModel):
    """A node of the route tree. ``receivers`` empty on a child: the parent's are used."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    match: RouteMatch = Field(default_factory=RouteMatch)
    receivers: list[Name] = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")
    # A notification whose group (these facts, plus the receiver and event) was sent within repeat_interval_s is
    # not sent again (a flapping incident does not page every minute). 0: every notification is sent.
    group_by: list[Literal["incident", "namespace", "cluster", "environment", "severity", "priority", "risk",
                           "event"]] = Field(default_factory=lambda: ["incident"])
    repeat_interval_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    routes: list[RouteConfig] = Field(default_factory=list)


class SlackUser(BaseModel):
    """The Kubernetes identity a Slack user decides as (checked with a SubjectAccessReview, like the console)."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=256)
    groups: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default_factory=list)


class SlackConfig(BaseModel):
    """The Slack app. Secrets from the environment: ``KUBERNAUT_NOTIFICATIONS__SLACK__BOT_TOKEN`` and
    ``…__SIGNING_SECRET``. Without a signing secret the interactions endpoint refuses every request."""

    model_config = ConfigDict(extra="forbid")

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    # The Web API's base URL (slack_sdk's default); tests point it at a local peer.
    api_url: str = Field(default="https://slack.com/api/", pattern=r"^https?://")
    # The default receiver's channel (empty: the default receiver has no Slack channel).
    channel: str | None = Field(default=None, min_length=1, max_length=80, pattern=r"^[#A-Za-z0-9_.-]+$")
    # Slack user id (U…/W…) or e-mail → the Kubernetes user and groups it decides as. Unmapped users are refused.
    users: dict[Annotated[str, Field(min_length=1, max_length=320)], SlackUser] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=120)

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None and bool(self.bot_token.get_secret_value())


class EscalationConfig(BaseModel):
    """An approval not decided within ``escalate_after_s`` is notified again as ``escalated`` (route it to
    PagerDuty with ``match: {event: [escalated]}``), and once more ``remind_before_expiry_s`` before it expires;
    its expiry is notified as ``expired``."""

    model_config = ConfigDict(extra="forbid")

    escalate_after_s: float | None = Field(default=None, gt=0, le=7 * 86400)
    remind_before_expiry_s: float | None = Field(default=None, gt=0, le=7 * 86400)


class ReceiverHealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Failed deliveries in a row after which a receiver counts as failing (/ready, metric).
    failing_after: int = Field(default=3, ge=1, le=1000)


def _glob(pattern: str) -> str:
    """A shell-style pattern (``*``, ``?``) as a regular expression that matches the whole value."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


def check_tree(receivers: list[ReceiverConfig], route: RouteConfig) -> None:
    """Every receiver a route names exists (``default`` always does)."""
    known = {r.name for r in receivers} | {DEFAULT_RECEIVER}
    names = [r.name for r in receivers]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"notifications.receivers: {duplicated} named twice")
    stack = [route]
    while stack:
        node = stack.pop()
        unknown = sorted(set(node.receivers) - known)
        if unknown:
            raise ValueError(f"notifications.route names unknown receiver(s) {unknown}; known: {sorted(known)}")
        stack.extend(node.routes)


class RoutingMixin(BaseModel):
    """The fields ``NotificationsConfig`` adds for routing (kept here, next to their models)."""

    # The web console's address, for links to an approval (``<console_url>/approvals/<id>``); unset: no link.
    console_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=500)
    receivers: list[ReceiverConfig] = Field(default_factory=list)
    route: RouteConfig = Field(default_factory=RouteConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    receiver_health: ReceiverHealthConfig = Field(default_factory=ReceiverHealthConfig)

    @model_validator(mode="after")
    def _tree_names_known_receivers(self) -> RoutingMixin:
        check_tree(self.receivers, self.route)
        if (self.slack.channel or any(r.slack_channel for r in self.receivers)) and not self.slack.enabled:
            # Fail at start, not at the first approval: a Slack channel without the app's token cannot be posted to.
            raise ValueError("notifications.receivers name a slack_channel but notifications.slack.bot_token is "
                             "not set (KUBERNAUT_NOTIFICATIONS__SLACK__BOT_TOKEN)")
        return self
