"""Server-side rendering of the console's pages: Jinja2 with autoescape on everything, and the filters the
templates use. Alert text, logs and LLM output reach the templates only as data: autoescape turns a
``<script>`` in an annotation into text, and nothing here marks untrusted text safe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape

#: Content-Security-Policy of every console response: scripts and styles only from the console's own static
#: files (no inline script, no eval, no inline style), nothing framed, forms only to this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def diff_lines(diff: str | None) -> Iterator[tuple[str, str]]:
    """(css class, line) of a unified diff: added, removed, hunk header, file header or context."""
    for line in (diff or "").splitlines():
        if line.startswith(("+++", "---")):
            yield "diff-file", line
        elif line.startswith("+"):
            yield "diff-add", line
        elif line.startswith("-"):
            yield "diff-del", line
        elif line.startswith("@@"):
            yield "diff-hunk", line
        else:
            yield "diff-ctx", line


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            return as_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def utc_iso(value: Any) -> str:
    moment = as_datetime(value)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if moment else ""


def utc_text(value: Any) -> str:
    moment = as_datetime(value)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds <= 0:
        return "0s"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes}m" if hours else f"{minutes}m {secs}s" if minutes else f"{secs}s"


def time_left(expires_at: Any, now: datetime | None = None) -> str:
    moment = as_datetime(expires_at)
    if moment is None:
        return "—"
    left = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    return "expired" if left <= 0 else duration(left)


def pretty(value: Any) -> str:
    """JSON for a <pre>: indented, keys in order (escaped by autoescape like any text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def environment() -> Environment:
    env = Environment(loader=PackageLoader("kubernaut.gateway.console", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True, enable_async=False)
    env.filters.update(diff_lines=diff_lines, utc_iso=utc_iso, utc_text=utc_text, time_left=time_left,
                       duration=duration, pretty=pretty)
    return env
