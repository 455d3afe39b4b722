"""What the catalog raises: refusals the gateway and the analysis map to 4xx/422 like any ValueError."""

from __future__ import annotations

from kubernaut.execution.catalog.hygiene import safe_repr


class CatalogError(ValueError):
    """A request the catalog refuses; a ValueError so callers that already map ValueError to 4xx/422
    (the gateway, the analysis validator) need no special case."""


class UnknownActionError(CatalogError):
    """The action name is not in the catalog; carries suggestions so an LLM repair prompt or an
    operator can correct a typo instead of guessing."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown action {safe_repr(name)}{hint} (the catalog is listed at GET /api/v1/actions)")

