"""Delivery through apprise (Slack, Teams, email, PagerDuty, webhooks …), one URL at a time.

Each URL is delivered and recorded separately so that a retry re-sends only where it failed.
URLs carry credentials: only their scheme is ever logged or stored.
"""

from __future__ import annotations

import asyncio
import logging

import apprise

logger = logging.getLogger(__name__)

_TYPES = {
    "info": apprise.NotifyType.INFO,
    "success": apprise.NotifyType.SUCCESS,
    "warning": apprise.NotifyType.WARNING,
    "failure": apprise.NotifyType.FAILURE,
}


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "invalid"


def validate_url(url: str) -> None:
    """Refuse at start-up a URL apprise cannot use, naming its scheme (never the secret)."""
    if apprise.Apprise.instantiate(url) is None:
        raise ValueError(f"notification URL with scheme {scheme_of(url)!r} is not a valid apprise URL")


async def deliver(url: str, title: str, body: str, severity: str, timeout_s: float) -> bool:
    sink = apprise.Apprise()
    if not sink.add(url):
        return False
    try:
        return bool(await asyncio.wait_for(
            sink.async_notify(body=body, title=title, notify_type=_TYPES.get(severity, apprise.NotifyType.INFO)),
            timeout=timeout_s,
        ))
    except asyncio.TimeoutError:
        logger.warning("delivery to a %s URL timed out", scheme_of(url))
        return False
