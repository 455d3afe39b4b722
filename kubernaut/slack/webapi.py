"""The Slack Web API calls Kubernaut makes, through slack_sdk: post, update in place, ephemeral replies, a user's
e-mail. ``notifications.slack.api_url`` is slack_sdk's ``base_url`` (tests point it at a local peer). The bot
token is only ever handed to slack_sdk; errors carry Slack's error code or the transport's error type, never
the token.
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from kubernaut.config.notifications import SlackConfig

#: The action ids of the approval message's buttons (kubernaut.notifications.slack_blocks) that the
#: interactions endpoint (kubernaut.gateway.routes.slack) acts on.
APPROVE = "kubernaut_approve"
REJECT = "kubernaut_reject"


class SlackError(Exception):
    """A Web API call that failed; ``error`` is Slack's error code or the transport's error (never the token)."""


class SlackApp:
    """The Web API calls Kubernaut makes, through slack_sdk (``api_url`` configurable for a local peer)."""

    def __init__(self, config: SlackConfig) -> None:
        if not config.enabled or config.bot_token is None:
            raise ValueError("notifications.slack.bot_token is not set")
        self.client = AsyncWebClient(token=config.bot_token.get_secret_value(), base_url=config.api_url,
                                     timeout=int(max(1, config.timeout_s)))

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            raise SlackError(f"{method}: {exc.response.get('error', 'error')}") from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise SlackError(f"{method}: {type(exc).__name__}") from None
        except Exception as exc:  # aiohttp's own errors (connection refused, timeouts) and anything unexpected
            raise SlackError(f"{method}: {type(exc).__name__}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post(self, channel: str, text: str, blocks: list[dict[str, Any]], thread_ts: str | None = None
                   ) -> tuple[str, str]:
        """chat.postMessage; returns (channel id, ts) as Slack answers them."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "blocks": blocks, "unfurl_links": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        data = await self._call("chat.postMessage", **kwargs)
        return str(data.get("channel") or channel), str(data.get("ts") or "")

    async def update(self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
        await self._call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        await self._call("chat.postEphemeral", channel=channel, user=user, text=text)

    async def email_of(self, user: str) -> str | None:
        """The user's e-mail (users.info; needs the users:read.email scope), for mappings keyed by e-mail."""
        try:
            response = await self.client.users_info(user=user)
        except Exception:
            return None
        profile = (response.data.get("user") or {}).get("profile") or {} if isinstance(response.data, dict) else {}
        email = profile.get("email")
        return str(email) if email else None
