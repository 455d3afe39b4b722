"""Group commit: concurrent webhooks share one INSERT, and each is acknowledged only after it committed.

No timer and no added latency: a webhook that finds a free commit slot is written at once; webhooks
arriving while every slot is busy wait for the next statement and go in together. At thousands of
webhooks per second this turns thousands of statements (and their round trips, parse and WAL flushes)
into tens, which is what lets a 2-core gateway keep up with AlertManager storms.

Sharing a statement must not mean sharing a fate: when PostgreSQL refuses a batch for what it contains
(not because it is unreachable), every webhook of the batch is tried again in a statement of its own, so
only the one the server refuses is refused (``Refused``: the gateway answers 422) and its neighbours commit.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.storage.alerts import StoredAlert, insert_webhooks
from kubernaut.storage.database import transient


class Refused(Exception):
    """PostgreSQL refused this webhook's own statement for its content: retrying cannot help (a 4xx)."""


def refused_for_content(exc: BaseException) -> bool:
    """The server (PostgresError) or the driver (a value it cannot encode: ValueError) refused the rows, and not
    for being unreachable or busy: those answer 503 for every webhook of the batch and the senders retry."""
    return isinstance(exc, (asyncpg.PostgresError, ValueError)) and not transient(exc)


@dataclass
class _Pending:
    payload: WebhookPayload
    request_id: str
    done: asyncio.Future[list[StoredAlert]] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    def __init__(self, pool: asyncpg.Pool, *, slots: int = 2, max_alerts: int = 5000,
                 insert: Callable[[asyncpg.Pool, list[tuple[WebhookPayload, str]]],
                                  Awaitable[list[list[StoredAlert]]]] = insert_webhooks) -> None:
        self._pool = pool
        self._insert = insert
        self._slots = slots  # statements in flight at once (overlaps one round trip with the next batch)
        self._max_alerts = max_alerts  # per statement: bounds its size and the time a lock is held
        self._queue: deque[_Pending] = deque()
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def commit(self, payload: WebhookPayload, request_id: str) -> list[StoredAlert]:
        """Store the webhook's alerts; returns when they are committed (raises when they could not be)."""
        pending = _Pending(payload, request_id)
        self._queue.append(pending)
        if self._running < self._slots:
            self._running += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)  # the loop keeps only a weak reference to a task
            task.add_done_callback(self._tasks.discard)
        return await pending.done

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, alerts = [], 0
                while self._queue and (not batch or alerts + len(self._queue[0].payload.alerts) <= self._max_alerts):
                    item = self._queue.popleft()
                    batch.append(item)
                    alerts += len(item.payload.alerts)
                try:
                    stored = await self._insert(self._pool, [(p.payload, p.request_id) for p in batch])
                except BaseException as exc:
                    if not isinstance(exc, Exception):
                        self._fail(batch, RuntimeError(str(exc)))
                        raise
                    if refused_for_content(exc):
                        await self._one_by_one(batch, exc)
                    else:  # every waiter gets the failure: each answers 503, none is lost
                        self._fail(batch, exc)
                    continue
                for item, rows in zip(batch, stored, strict=True):
                    if not item.done.done():
                        item.done.set_result(rows)
        finally:
            self._running -= 1

    @staticmethod
    def _fail(batch: list[_Pending], exc: Exception) -> None:
        for item in batch:
            if not item.done.done():
                item.done.set_exception(exc)

    async def _one_by_one(self, batch: list[_Pending], exc: Exception) -> None:
        if len(batch) == 1:
            self._fail(batch, Refused(_describe(exc)))
            return
        for index, item in enumerate(batch):
            try:
                (rows,) = await self._insert(self._pool, [(item.payload, item.request_id)])
            except Exception as own:
                if refused_for_content(own):
                    self._fail([item], Refused(_describe(own)))
                    continue
                self._fail(batch[index:], own)  # the server went away meanwhile: the rest answer 503
                return
            if not item.done.done():
                item.done.set_result(rows)


def _describe(exc: Exception) -> str:
    # The server's own words (e.g. "unsupported Unicode escape sequence", "index row size ... exceeds"), short.
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
