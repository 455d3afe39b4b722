"""Untrusted-string hygiene.

Parameters and targets usually originate in alert labels or LLM output, so every string is bounded,
control characters are refused, and error messages echo input only through ``safe_repr``."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

# Bidirectional overrides reorder text on screen ("trojan source"), so an approver could read
# something other than what would be executed; refuse them together with the Cc control characters.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def bad_char(ch: str, allow: str) -> bool:
    return ch not in allow and (unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS)


def safe_repr(value: object, limit: int = 80) -> str:
    """repr() bounded in length, for echoing untrusted input in error messages without letting
    it flood logs or smuggle terminal escapes (repr escapes control characters)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def reject_controls(allow: str = "") -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, str) and any(bad_char(ch, allow) for ch in value):
            raise ValueError("must not contain control or bidirectional-override characters")
        return value

    return check


def reject_whitespace(value: Any) -> Any:
    """Runs before the pattern so the message says what is wrong instead of quoting a regex."""
    value = reject_controls()(value)
    if isinstance(value, str) and any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace")
    return value
