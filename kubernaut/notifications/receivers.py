"""The configured receivers by name: apprise URLs and/or a Slack app channel. ``default`` is today's receiver:
``notifications.urls`` and, with a Slack app, ``notifications.slack.channel``."""

from __future__ import annotations

from dataclasses import dataclass

from kubernaut.config.notifications import DEFAULT_RECEIVER
from kubernaut.config.settings import NotificationsConfig
from kubernaut.notifications.delivery import validate_url


@dataclass(frozen=True)
class Receiver:
    name: str
    urls: tuple[str, ...] = ()
    slack_channel: str | None = None

    @property
    def targets(self) -> int:
        return len(self.urls) + (1 if self.slack_channel else 0)


def receivers_of(config: NotificationsConfig) -> dict[str, Receiver]:
    """Every receiver, its URLs checked with apprise (a bad URL refuses the start, naming only its scheme)."""
    found = {DEFAULT_RECEIVER: Receiver(DEFAULT_RECEIVER, tuple(u.get_secret_value() for u in config.urls),
                                        config.slack.channel if config.slack.enabled else None)}
    for receiver in config.receivers:
        found[receiver.name] = Receiver(receiver.name, tuple(u.get_secret_value() for u in receiver.urls),
                                        receiver.slack_channel)
    for receiver in found.values():
        for url in receiver.urls:
            validate_url(url)
    return found
