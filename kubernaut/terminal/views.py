"""The CLI's read commands: fetch from the API, then a table or timeline, ``--json`` for scripts, ``--watch``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console, RenderableType

from kubernaut.terminal import render
from kubernaut.terminal.watch import follow


class ApiError(Exception):
    """A refusal or failure answer of the API (the message says which, with the API's own words)."""


def get(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> Any:
    response = client.get(path, params=params or {})
    if not response.is_success:
        try:
            body = response.json()
            reason = body.get("detail") or body.get("error") or body
        except ValueError:
            reason = response.text
        raise ApiError(f"{response.status_code} {reason}")
    return response.json()


def show(client: httpx.Client, path: str, params: dict[str, Any], draw: Callable[[Any], RenderableType],
         args: argparse.Namespace, console: Console | None = None, refreshes: int | None = None) -> int:
    """One answer as ``draw`` renders it (or as JSON); ``--watch`` follows it every ``--interval`` seconds."""
    console = console or Console()
    if args.watch and args.json:
        # JSON lines: one document per poll, for a script reading a pipe.
        shown = 0
        while refreshes is None or shown < refreshes:
            try:
                print(json.dumps(get(client, path, params), separators=(",", ":")), flush=True)
            except (ApiError, httpx.HTTPError) as exc:
                print(f"cannot refresh: {exc}", file=sys.stderr, flush=True)
            shown += 1
            if refreshes is None or shown < refreshes:
                time.sleep(args.interval)
        return 0
    if args.watch:
        try:
            follow(console, lambda: draw(get(client, path, params)), args.interval,
                   retry_on=(ApiError, httpx.HTTPError), refreshes=refreshes)
        except KeyboardInterrupt:
            pass
        return 0
    try:
        body = get(client, path, params)
    except ApiError as exc:
        print(f"kubernaut: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        console.print(draw(body))
    return 0


def incidents(client: httpx.Client, args: argparse.Namespace, console: Console | None = None,
              refreshes: int | None = None) -> int:
    if args.id is not None:
        return show(client, f"/api/v1/incidents/{args.id}", {}, render.incident_timeline, args, console, refreshes)
    params: dict[str, Any] = {"limit": args.limit}
    for name in ("status", "namespace"):
        if getattr(args, name, None):
            params[name] = getattr(args, name)
    return show(client, "/api/v1/incidents", params, lambda body: render.incidents_table(body["items"]), args,
                console, refreshes)


def approvals(client: httpx.Client, args: argparse.Namespace, console: Console | None = None,
              refreshes: int | None = None) -> int:
    params = {"status": args.status} if args.status else {}
    return show(client, "/api/v1/approvals", params, lambda body: render.approvals_table(body["items"]), args,
                console, refreshes)
