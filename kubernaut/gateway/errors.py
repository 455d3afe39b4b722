"""Bad input gets a clear answer naming the problem — never a 500."""

from __future__ import annotations

from pydantic import ValidationError


def describe_validation_error(exc: ValidationError, limit: int = 10) -> list[dict[str, str]]:
    """``[{"field": "alerts.0.labels.alertname", "message": "..."}]`` — the field path first."""
    problems = []
    for error in exc.errors()[:limit]:
        field = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append({"field": field, "message": error["msg"]})
    return problems


def summary(problems: list[dict[str, str]]) -> str:
    return "; ".join(f"{p['field']}: {p['message']}" for p in problems)
