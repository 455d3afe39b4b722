"""Bad input gets a clear answer naming the problem — never a 500."""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from kubernaut.models.principal import Principal


def describe_validation_error(exc: ValidationError, limit: int = 10) -> list[dict[str, str]]:
    """``[{"field": "alerts.0.labels.alertname", "message": "..."}]`` — the field path first."""
    problems = []
    for error in exc.errors()[:limit]:
        field = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append({"field": field, "message": error["msg"]})
    return problems


def summary(problems: list[dict[str, str]]) -> str:
    return "; ".join(f"{p['field']}: {p['message']}" for p in problems)


def printable(text: str) -> str:
    """A lone surrogate (the valid JSON escape "\\ud800") cannot be encoded as UTF-8: escape it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def problem(status: int, message: str, request_id: str, retry_after: float = 5.0,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """The gateway's refusal: ``{"error", "request_id", ...}``; 429 and 503 say when to retry."""
    headers = {**(headers or {}), "X-Request-ID": request_id}
    if status in (429, 503):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"error": message, "request_id": request_id, **extra}, status_code=status, headers=headers)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's default 422 echoes the offending input, and one with a lone surrogate in it could not be
    encoded: the answer was a 500 (found by tests/system/test_fuzz.py). This one names the fields and
    the messages, as the webhook's answers do, and never the input."""
    problems = [{"field": printable(".".join(str(part) for part in error["loc"])) or "body",
                 "message": printable(str(error["msg"]))} for error in exc.errors()[:10]]
    return JSONResponse({"error": f"invalid request: {summary(problems)}", "problems": problems}, status_code=422)


def other_actor(by: str | None, caller: Principal) -> JSONResponse | None:
    """422 when a body's ``by`` names someone other than the authenticated caller: who acts is what the
    credentials say, and a body naming someone else is a forgery to refuse, not a typo to correct."""
    if by is None or by in (caller.name, caller.actor):
        return None
    problems = [{"field": "body.by", "message": f"names someone other than the authenticated caller "
                                                f"({caller.actor}); omit it"}]
    return JSONResponse({"error": f"invalid request: {summary(problems)}", "problems": problems}, status_code=422)
