"""The base of every action's parameter model, and the error text its validation produces."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


def _schema_without_docstring(schema: dict[str, Any]) -> None:
    """Docstrings explain the code to developers; the schema goes to the LLM and API clients,
    who get the action's summary and the per-field descriptions instead."""
    schema.pop("description", None)


class ActionParams(BaseModel):
    """Base of every parameter model.

    extra="forbid" so a misspelt or invented parameter from the LLM is an error rather than being
    silently dropped (which would run the action with defaults the model did not intend); frozen so
    a validated request cannot be altered between approval and execution.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_without_docstring)


class NoParams(ActionParams):
    """For actions fully determined by their target."""


def format_validation_error(exc: ValidationError) -> str:
    """`field: message; field: message` — short enough for an LLM repair prompt, and naming the
    field so a human sees at once what to fix. Input values are not echoed (they are untrusted)."""
    # Union members add their own tags to the location ("constrained-int", "function-before[...]");
    # they mean nothing to the reader, so keep field names and list indexes, and merge the messages
    # of one field into a single item.
    by_loc: dict[str, list[str]] = {}
    for error in exc.errors(include_url=False, include_input=False):
        parts = [str(p) for p in error.get("loc", ()) if isinstance(p, int) or str(p).isidentifier()]
        message = str(error.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        messages = by_loc.setdefault(".".join(parts), [])
        if message not in messages:
            messages.append(message)
    return "; ".join(
        f"{loc}: {' or '.join(messages)}" if loc else " or ".join(messages) for loc, messages in by_loc.items()
    )
