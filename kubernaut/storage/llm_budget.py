"""The global LLM token budget: tokens per UTC minute and per UTC day, across all analysis replicas.

A caller reserves its worst case (prompt estimate + completion cap) before an LLM call and settles to the
tokens really used after it. Reservation and check happen under row locks in one transaction, so two
replicas cannot both take the last tokens of a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

_WINDOWS_SQL = ("SELECT date_trunc('minute', timezone('UTC', now())) AS m, "
                "date_trunc('day', timezone('UTC', now())) AS d")


@dataclass(frozen=True)
class Reservation:
    minute: datetime
    day: datetime
    tokens: int


@dataclass(frozen=True)
class Usage:
    """Tokens counted in the current windows (including this reservation when one was granted)."""

    minute: int
    day: int


async def reserve(pool: asyncpg.Pool, *, want: int, need: int, per_minute: int | None, per_day: int | None,
                  acquire_timeout_s: float) -> tuple[Reservation | None, Usage]:
    """Reserve up to ``want`` tokens, at least ``need``; (None, usage) when the windows have less room."""
    async with pool.acquire(timeout=acquire_timeout_s) as conn, conn.transaction():
        windows = await conn.fetchrow(_WINDOWS_SQL)
        minute, day = windows["m"], windows["d"]
        # Same order as the FOR UPDATE below ('day' < 'minute'): concurrent reservers never wait in a cycle.
        await conn.execute(
            """INSERT INTO llm_token_windows (scope, window_start) VALUES ('day', $2), ('minute', $1)
               ON CONFLICT DO NOTHING""", minute, day)
        rows = await conn.fetch(
            """SELECT scope, tokens FROM llm_token_windows
               WHERE (scope = 'minute' AND window_start = $1) OR (scope = 'day' AND window_start = $2)
               ORDER BY scope FOR UPDATE""", minute, day)
        used = {r["scope"]: int(r["tokens"]) for r in rows}
        room = [limit - used[scope] for scope, limit in (("minute", per_minute), ("day", per_day))
                if limit is not None]
        grant = min([want, *room])
        if grant < need:
            return None, Usage(minute=used["minute"], day=used["day"])
        await conn.execute(
            """UPDATE llm_token_windows SET tokens = tokens + $3
               WHERE (scope = 'minute' AND window_start = $1) OR (scope = 'day' AND window_start = $2)""",
            minute, day, grant)
        # Windows nobody counts any more: keep the table small.
        await conn.execute(
            """DELETE FROM llm_token_windows
               WHERE (scope = 'minute' AND window_start < $1::timestamp - interval '1 hour')
                  OR (scope = 'day' AND window_start < $2::timestamp - interval '7 days')""", minute, day)
        return Reservation(minute=minute, day=day, tokens=grant), Usage(minute=used["minute"] + grant,
                                                                        day=used["day"] + grant)


async def settle(pool: asyncpg.Pool, reservation: Reservation, used: int, acquire_timeout_s: float) -> None:
    """Replace the reservation by the tokens really used (more or fewer) in the windows it was taken from."""
    delta = used - reservation.tokens
    if delta == 0:
        return
    async with pool.acquire(timeout=acquire_timeout_s) as conn:
        await conn.execute(
            """UPDATE llm_token_windows SET tokens = GREATEST(0, tokens + $3)
               WHERE (scope = 'minute' AND window_start = $1) OR (scope = 'day' AND window_start = $2)""",
            reservation.minute, reservation.day, delta)


async def usage(pool: asyncpg.Pool) -> Usage:
    """Tokens counted in the current minute and day, for status pages and tests."""
    row = await pool.fetchrow(
        f"""WITH w AS ({_WINDOWS_SQL})
            SELECT coalesce((SELECT tokens FROM llm_token_windows, w WHERE scope = 'minute' AND window_start = w.m), 0)
                     AS minute,
                   coalesce((SELECT tokens FROM llm_token_windows, w WHERE scope = 'day' AND window_start = w.d), 0)
                     AS day""")
    return Usage(minute=int(row["minute"]), day=int(row["day"]))
