"""A NUL character in a query string or path is refused before any route sees it.

PostgreSQL's text cannot hold U+0000, so a filter such as ``?namespace=a%00b`` reached the database and came back
as a 500 (found by tests/system/test_fuzz.py). No route has a use for it: one check here answers every route with
the same 422 naming the field, instead of one check per filter.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.responses import JSONResponse

from kubernaut.gateway.errors import printable, summary


def nul_fields(scope: dict[str, Any]) -> list[dict[str, str]]:
    """The ``{"field", "message"}`` problems of a request whose path or query carries a NUL character."""
    problems = []
    if "\x00" in unquote(scope.get("path", "")):
        problems.append({"field": "path", "message": "contains a NUL character"})
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            if "\x00" in name or "\x00" in value:
                shown = name.replace("\x00", "\\0")
                problems.append({"field": printable(f"query.{shown}"),
                                 "message": "contains a NUL character"})
    return problems


class QueryGuard:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problems = nul_fields(scope)
            if problems:
                response = JSONResponse({"error": f"invalid request: {summary(problems)}", "problems": problems},
                                        status_code=422)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
