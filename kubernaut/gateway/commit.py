"""Group commit: concurrent webhooks share one INSERT, and each is acknowledged only after it committed.

No timer and no added latency: a webhook that finds a free commit slot is written at once; webhooks
arriving while every slot is busy wait for the next statement and go in together. At thousands of
webhooks per second this turns thousands of statements (and their round trips, parse and WAL flushes)
into tens, which is what lets a 2-core gateway keep up with AlertManager storms.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.storage.alerts import StoredAlert, insert_webhooks


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
                except BaseException as exc:  # every waiter gets the failure: each answers 503, none is lost
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for item, rows in zip(batch, stored, strict=True):
                    if not item.done.done():
                        item.done.set_result(rows)
        finally:
            self._running -= 1
