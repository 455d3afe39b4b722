"""``--watch``: fetch and render again every few seconds, in place, until interrupted."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text


def follow(console: Console, render: Callable[[], RenderableType], interval_s: float, *,
           retry_on: tuple[type[Exception], ...] = (), refreshes: int | None = None,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Show ``render()`` and replace it every ``interval_s`` seconds; ``refreshes`` bounds the number of renders
    (None: until Ctrl-C). A render that fails with one of ``retry_on`` (the API unreachable for a moment) shows
    why and is tried again at the next interval."""
    shown = 0
    with Live(console=console, auto_refresh=False, transient=False) as live:
        try:
            while refreshes is None or shown < refreshes:
                try:
                    view = render()
                except retry_on as exc:  # keep following: the next poll may succeed
                    view = Text(f"cannot refresh: {exc}", style="red")
                live.update(view, refresh=True)
                shown += 1
                if refreshes is not None and shown >= refreshes:
                    break
                sleep(interval_s)
        except KeyboardInterrupt:
            pass
