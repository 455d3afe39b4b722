"""Fit the incident's DATA block into a small context window, dropping the least useful context first.

Small self-hosted models have 2k-4k token windows; a busy incident's data (events, revisions, nodes, history)
can outgrow them, and the server then refuses the whole request. Here the data is trimmed, one step at a
time in the order below, until the prompt plus the completion it asks for fits; every step taken is named so
the prompt and the stored analysis say what the model did not see. What decides the answer — the observed
facts, the first findings and the alert's identity — is trimmed last or never.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

# Characters per token, conservatively low so estimates err on the high side (as the analyzer's budget does).
CHARS_PER_TOKEN = 3.0
# Per message: role markers and the chat template's separators.
_MESSAGE_OVERHEAD_TOKENS = 8


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of ``messages`` (their text and tool calls, not the JSON envelope of the request)."""
    chars = sum(len(str(m.get("content") or "")) + (len(json.dumps(m["tool_calls"])) if m.get("tool_calls") else 0)
                for m in messages)
    return int(chars / CHARS_PER_TOKEN) + _MESSAGE_OVERHEAD_TOKENS * len(messages)


def _keep(path: tuple[str, ...], keep: int) -> Callable[[dict[str, Any]], str | None]:
    """A step that keeps the first ``keep`` items of the list at ``path`` (0: drops the key)."""
    def step(data: dict[str, Any]) -> str | None:
        parent: Any = data
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or path[-1] not in parent:
            return None
        value = parent[path[-1]]
        name = ".".join(path)
        if keep == 0 or not isinstance(value, list):
            del parent[path[-1]]
            return name
        if len(value) <= keep:
            return None
        parent[path[-1]] = value[:keep]
        return f"{name} beyond the first {keep}"
    return step


def _each(list_key: str, field: str) -> Callable[[dict[str, Any]], str | None]:
    """A step that drops ``field`` from every item of the top-level list ``list_key``."""
    def step(data: dict[str, Any]) -> str | None:
        items = [item for item in data.get(list_key) or [] if isinstance(item, dict) and field in item]
        for item in items:
            del item[field]
        return f"{list_key}.{field}" if items else None
    return step


# Lowest value first: cluster-wide detail, then the long tail of lists, then the evidence's detail.
TRIM_STEPS: tuple[Callable[[dict[str, Any]], str | None], ...] = (
    _keep(("context", "nodes"), 0),
    _keep(("context", "pvcs"), 0),
    _keep(("context", "hpa"), 0),
    _keep(("context", "past_actions"), 0),
    _each("alerts", "annotations"),
    _keep(("history",), 2),
    _keep(("context", "events"), 3),
    _keep(("context", "workload", "revisions"), 0),
    _each("findings", "evidence"),
    _keep(("context", "pods"), 1),
    _keep(("history",), 0),
    _keep(("context", "events"), 0),
    _keep(("alerts",), 1),
    _keep(("findings",), 3),
)


def serialize(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), default=str, ensure_ascii=True)


def fit_data(data: dict[str, Any], max_chars: int) -> tuple[dict[str, Any], list[str]]:
    """``data`` trimmed step by step until it serializes within ``max_chars``; (data, what was trimmed).
    The result may still be too long when even the fully trimmed data does not fit: the caller checks."""
    if len(serialize(data)) <= max_chars:
        return data, []
    data = copy.deepcopy(data)
    trimmed: list[str] = []
    for step in TRIM_STEPS:
        taken = step(data)
        if taken is not None:
            trimmed.append(taken)
            if len(serialize(data)) <= max_chars:
                break
    return data, trimmed
