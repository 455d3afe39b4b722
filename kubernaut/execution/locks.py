"""One execution per target at a time, across every executor replica.

A lease row in PostgreSQL rather than an advisory lock: an advisory lock lives in one database
session, which a connection pooler may hand to someone else and which pins a connection for the
whole (possibly minutes-long) action. A lease survives poolers, shows who holds what, and frees
itself when the holder dies: it simply stops being renewed and expires.
The lease rows themselves are kept by :mod:`kubernaut.storage.execution_locks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

from kubernaut.storage.execution_locks import Holder, holder, release, renew, try_acquire

logger = logging.getLogger(__name__)


class LockBusy(Exception):
    def __init__(self, target_key: str, holder: Holder | None) -> None:
        self.target_key = target_key
        self.holder = holder
        if holder is None:
            text = f"another execution holds the lock on {target_key}"
        else:
            text = (f"action #{holder.action_id} ({holder.action}) holds the lock on {target_key} "
                    f"(lease expires in {holder.expires_in_s:.0f}s unless renewed)")
        super().__init__(text)


@contextlib.asynccontextmanager
async def target_lock(
    pool: asyncpg.Pool, target_key: str, *, action_id: int | None, action: str, owner: str, ttl_s: float, wait_s: float,
    on_renew: Callable[[], Awaitable[object]] | None = None,
) -> AsyncIterator[None]:
    """Hold the target's lease for the block, renewing it at a third of its TTL.

    Waits up to ``wait_s`` for a busy target (polling: the holder may be in another process), then
    raises LockBusy. ``on_renew`` runs with each renewal (the pipeline renews the action record's
    lease with it, so both expire together if this replica dies).
    """
    deadline = time.monotonic() + wait_s
    delay = 0.1
    while not await try_acquire(pool, target_key, action_id=action_id, action=action, owner=owner, ttl_s=ttl_s):
        if time.monotonic() >= deadline:
            raise LockBusy(target_key, await holder(pool, target_key))
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)
    renewer = asyncio.get_running_loop().create_task(_keep_renewed(pool, target_key, owner, ttl_s, on_renew))
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await release(pool, target_key, owner)
        except Exception:  # the lease expires by itself; never mask the action's own outcome
            logger.warning("releasing the lock on %s failed; it expires in %.0fs", target_key, ttl_s, exc_info=True)


async def _keep_renewed(pool: asyncpg.Pool, target_key: str, owner: str, ttl_s: float,
                        on_renew: Callable[[], Awaitable[object]] | None) -> None:
    while True:
        await asyncio.sleep(ttl_s / 3)
        try:
            if not await renew(pool, target_key, owner, ttl_s):
                logger.error("lost the lock on %s (lease expired before renewal)", target_key)
                return
            if on_renew is not None:
                await on_renew()
        except Exception:
            logger.warning("renewing the lock on %s failed; retrying", target_key, exc_info=True)
