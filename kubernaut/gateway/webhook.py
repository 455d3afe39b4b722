"""The one parser of AlertManager-shaped bodies: the webhook and ``/api/v1/analyze`` both call :func:`parse_webhook`.

Every limit is checked here, in the same order for both routes: size (counted while reading), JSON, nesting,
alert count, schema, labels per alert. The routes differ only in what they do above the alert limit: the
webhook truncates (AlertManager does not retry a 4xx, refusing would lose the whole group), ``/analyze``
refuses (an analysis is work per target).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from kubernaut.config.settings import GatewayConfig
from kubernaut.gateway.errors import describe_validation_error, problem, summary
from kubernaut.models.alertmanager import WebhookPayload

# An AlertManager body is 5 levels deep (body → alerts → alert → labels → value); anything much deeper is not
# one, and deep structures cost recursion wherever they are copied or serialised later.
MAX_NESTING = 16

#: The request body of both routes in the OpenAPI document (the routes read the body themselves).
WEBHOOK_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookPayload.model_json_schema(by_alias=True)}},
    }
}


@dataclass(frozen=True)
class Refusal:
    """Why a body is refused (``outcome``: the metric label) and the answer to send."""

    outcome: str
    response: JSONResponse


@dataclass(frozen=True)
class Parsed:
    """A valid body; ``dropped``: alerts beyond the limit that were cut off (also in ``truncated_alerts``)."""

    payload: WebhookPayload
    dropped: int


def nesting_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes ``limit`` bytes: bytes are counted as they arrive, so a chunked body
    without Content-Length (or one that lies about it) is never read whole before the check."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _invalid(request_id: str, problems: list[dict[str, str]]) -> Refusal:
    return Refusal("invalid", problem(422, f"invalid AlertManager webhook: {summary(problems)}", request_id,
                                      problems=problems))


async def parse_webhook(request: Request, config: GatewayConfig, request_id: str, *, max_alerts: int,
                        truncate: bool) -> Parsed | Refusal:
    """The body of ``request`` as a validated webhook, or the refusal to answer."""
    body = await read_body(request, config.max_body_bytes)
    if body is None:
        return Refusal("too_large", problem(413, f"body larger than {config.max_body_bytes} bytes", request_id))
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers of > 4300 digits
        return Refusal("bad_json", problem(400, f"malformed JSON: {exc}", request_id))
    except RecursionError:
        return Refusal("bad_json", problem(400, "malformed JSON: nested too deeply", request_id))
    if not isinstance(raw, dict):
        return _invalid(request_id, [{"field": "body", "message": "must be a JSON object"}])
    if nesting_exceeds(raw, MAX_NESTING):
        return _invalid(request_id, [{"field": "body", "message": f"nested deeper than {MAX_NESTING} levels"}])
    alerts = raw.get("alerts")
    dropped = 0
    if isinstance(alerts, list) and len(alerts) > max_alerts:
        if not truncate:
            return Refusal("too_large", problem(
                413, f"alerts: {len(alerts)} alerts exceed the limit of {max_alerts}", request_id))
        # A group above the limit is stored up to the limit and the rest counted, as AlertManager's own
        # max_alerts does (it does not retry a 4xx: refusing would lose the whole group).
        dropped = len(alerts) - max_alerts
        raw = {**raw, "alerts": alerts[:max_alerts]}
    try:
        payload = WebhookPayload.model_validate(raw, context={"received_at": datetime.now(timezone.utc)})
    except (ValidationError, RecursionError) as exc:
        return _invalid(request_id, describe_validation_error(exc) if isinstance(exc, ValidationError)
                        else [{"field": "body", "message": "nested too deeply"}])
    max_labels = config.max_labels_per_alert
    for index, alert in enumerate(payload.alerts):
        for field, mapping in (("labels", alert.labels), ("annotations", alert.annotations or {})):
            if len(mapping) > max_labels:
                return _invalid(request_id, [{"field": f"alerts.{index}.{field}",
                                              "message": f"{len(mapping)} entries exceed the limit of {max_labels}"}])
    payload.truncated_alerts += dropped
    return Parsed(payload, dropped)
