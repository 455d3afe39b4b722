"""A Slack button press, from the signed request to the principal who pressed it.

Slack signs every interaction (``X-Slack-Signature`` over ``v0:<timestamp>:<body>`` with the app's signing
secret, ``X-Slack-Request-Timestamp``); slack_sdk's verifier checks both and refuses timestamps more than five
minutes away. The Slack user is then mapped to a Kubernetes identity by ``notifications.slack.users`` (Slack user
id, or the user's e-mail): that identity decides, checked with the same SubjectAccessReview as any Kubernetes
caller. A user the mapping does not name is nobody (fail closed).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict
from slack_sdk.signature import SignatureVerifier

from kubernaut.config.notifications import SlackUser
from kubernaut.models.principal import Principal
from kubernaut.slack.webapi import APPROVE, REJECT

MAX_BODY_BYTES = 64 * 1024  # interaction payloads are a few KB


class InvalidInteraction(ValueError):
    """A well-signed request Kubernaut cannot act on; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Interaction(BaseModel):
    """One press of Approve or Reject."""

    model_config = ConfigDict(frozen=True)

    approval_id: int
    approve: bool
    user_id: str
    user_name: str | None = None
    channel_id: str | None = None
    message_ts: str | None = None


def verified(signing_secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    if not signing_secret or not timestamp or not signature:
        return False
    return SignatureVerifier(signing_secret).is_valid(body, timestamp, signature)


def replay_digest(timestamp: str, signature: str) -> str:
    """What identifies one signed request: a second delivery of it carries the same timestamp and signature."""
    return hashlib.sha256(f"{timestamp}:{signature}".encode()).hexdigest()


def parse(body: bytes) -> Interaction:
    """The button press in a ``block_actions`` payload (form field ``payload``, JSON)."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        raise InvalidInteraction("payload", "expected a form field 'payload' with JSON") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise InvalidInteraction("payload.type", "only block_actions are handled")
    actions = payload.get("actions")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise InvalidInteraction("payload.actions", "no action")
    action = actions[0]
    if action.get("action_id") not in (APPROVE, REJECT):
        raise InvalidInteraction("payload.actions[0].action_id", "not an approval button")
    value = str(action.get("value") or "")
    if not value.isdigit() or not 1 <= int(value) < 2**63:
        raise InvalidInteraction("payload.actions[0].value", "not an approval id")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    if not user.get("id"):
        raise InvalidInteraction("payload.user.id", "missing")
    channel = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    container = payload.get("container") if isinstance(payload.get("container"), dict) else {}
    return Interaction(approval_id=int(value), approve=action["action_id"] == APPROVE, user_id=str(user["id"])[:64],
                       user_name=str(user.get("username") or user.get("name") or "")[:128] or None,
                       channel_id=str(channel.get("id") or container.get("channel_id") or "")[:64] or None,
                       message_ts=str(container.get("message_ts") or "")[:64] or None)


def needs_email(users: dict[str, SlackUser], user_id: str) -> bool:
    """Whether the mapping could still name this user by e-mail (it does not name the id)."""
    return user_id not in users and any("@" in key for key in users)


def principal_for(users: dict[str, SlackUser], user_id: str, email: str | None) -> Principal | None:
    """The Kubernetes identity the Slack user decides as; None when the mapping names neither id nor e-mail."""
    mapped = users.get(user_id)
    if mapped is None and email:
        mapped = next((v for k, v in users.items() if "@" in k and k.lower() == email.lower()), None)
    if mapped is None:
        return None
    return Principal(name=mapped.user, method="kubernetes", groups=tuple(mapped.groups))
