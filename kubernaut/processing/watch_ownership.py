"""Which clusters' Warning events this processor replica watches: one owner per cluster, by lease.

Each cluster's event watch (``kubernaut.processing.events``) costs a long-lived watch on its API server and the
writes of its alerts; with a fleet and several processor replicas, every replica watching every cluster would
multiply that by the replicas. So each cluster's watch is owned by exactly one replica at a time, through a
lease row per cluster in PostgreSQL (``kubernaut.storage.watch_leases``), renewed by its holder every
``lease_renew_s`` and valid for ``lease_ttl_s``.

Why leases and not session advisory locks: a lock lives as long as its connection, and a replica that hangs (or
is cut off from the database by a network that never closes the socket) keeps it for as long as TCP lets it; a
lease expires at a time PostgreSQL's clock decides, so a dead or frozen holder's clusters are taken over within
``lease_ttl_s`` + ``lease_renew_s`` whatever happened to it.

Never two watchers for longer than one renewal interval: a holder stops a watch as soon as a renewal says the
lease is no longer its own, and, when it cannot reach the database, stops it before its lease can have expired
(the deadline is counted from before the last successful renewal was sent, so it is never later than the
database's). Duplicates would be harmless in any case (per-fingerprint locks, idempotent inserts): this
bounds their cost, not their correctness.

Balance: every replica heartbeats (``event_watch_replicas``), so each knows how many take part and holds at most
``ceil(clusters / replicas)``: it claims free or expired leases up to that share and, when a replica joined,
releases what it holds above it (the others claim those at their next tick). The clusters a replica tries
first are ordered by a hash of (replica, cluster), so that simultaneous starters spread rather than race for the
same one. A single-cluster install is a fleet of one: the home cluster has one owner.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg

from kubernaut.observability import metrics
from kubernaut.storage import watch_leases

logger = logging.getLogger(__name__)


class Watch(Protocol):
    """An event source: started when its cluster's lease is won, stopped when it is lost or given up."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def replica_id() -> str:
    """This replica's holder name: host and process (for people reading the leases) and a random part (unique)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WatchOwnership:
    """Claims, renews and releases this replica's share of the clusters' watches; runs their sources."""

    def __init__(self, pool: asyncpg.Pool, sources: dict[str, Callable[[], Watch | None]], *,
                 ttl_s: float = 30.0, renew_s: float = 10.0, holder: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``sources``: cluster name → a factory of its event source (None: it cannot be watched now, e.g. no
        credentials yet; asked again at the next tick)."""
        self.holder = holder or replica_id()
        self._pool = pool
        self._factories = sources
        self._ttl = ttl_s
        self._renew = renew_s
        self._monotonic = monotonic
        self._running: dict[str, Watch] = {}
        self._deadline: float | None = None  # before this, the leases of self._running are certainly ours
        self._unwatchable: set[str] = set()  # logged once until it changes
        self._task: asyncio.Task[None] | None = None
        self.replicas = 1  # as last counted

    @property
    def owned(self) -> list[str]:
        return sorted(self._running)

    def source(self, cluster: str) -> Watch | None:
        return self._running.get(cluster)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run_forever(), name="event-watch-ownership")

    async def run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event watch ownership: tick failed; retrying")
            await asyncio.sleep(self._renew)

    async def tick(self) -> None:
        """One round: heartbeat, renew what is held, give up what is above the share, claim up to it."""
        sent = self._monotonic()
        try:
            self.replicas = await watch_leases.heartbeat(self._pool, self.holder, self._ttl)
            kept = await watch_leases.renew(self._pool, self.holder, list(self._running), self._ttl)
        except (asyncpg.PostgresError, OSError, asyncio.TimeoutError) as exc:
            await self._unreachable(exc)
            return
        self._deadline = sent + self._ttl
        for cluster in [c for c in self._running if c not in kept]:
            logger.warning("event watch of cluster %s: lease lost to another replica; watch stopped", cluster)
            await self._stop(cluster)
        share = math.ceil(len(self._factories) / max(self.replicas, 1))
        for cluster in sorted(self._running, key=self._order)[share:]:
            await self._stop(cluster)
            await watch_leases.release(self._pool, self.holder, [cluster])
            logger.info("event watch of cluster %s released: %d replicas share %d clusters", cluster,
                        self.replicas, len(self._factories))
        for cluster in sorted(self._factories, key=self._order):
            if len(self._running) >= share:
                break
            if cluster in self._running:
                continue
            await self._try_claim(cluster, sent)
        self._report()

    async def _try_claim(self, cluster: str, sent: float) -> None:
        source = self._factories[cluster]()
        if source is None:
            if cluster not in self._unwatchable:
                logger.warning("event watch of cluster %s: no usable client; not claimed", cluster)
                self._unwatchable.add(cluster)
            return
        self._unwatchable.discard(cluster)
        if not await watch_leases.claim(self._pool, cluster, self.holder, self._ttl):
            return
        if not self._running:
            self._deadline = sent + self._ttl
        source.start()
        self._running[cluster] = source
        logger.info("event watch of cluster %s: this replica (%s) owns it", cluster, self.holder)

    async def _unreachable(self, exc: BaseException) -> None:
        """The database did not answer: keep watching while the leases are surely ours, not a moment longer."""
        if not self._running:
            return
        if self._deadline is None or self._monotonic() + self._renew >= self._deadline:
            logger.warning("event watch ownership: cannot renew (%s: %s); stopping %s before the leases expire",
                           type(exc).__name__, exc, ", ".join(self.owned))
            for cluster in list(self._running):
                await self._stop(cluster)
            self._report()
        else:
            logger.warning("event watch ownership: renewal failed (%s); retrying", type(exc).__name__)

    def _order(self, cluster: str) -> bytes:
        return hashlib.sha256(f"{self.holder}\0{cluster}".encode()).digest()

    async def _stop(self, cluster: str) -> None:
        source = self._running.pop(cluster, None)
        if source is not None:
            try:
                await source.stop()
            except Exception:
                logger.warning("event watch of cluster %s did not stop cleanly", cluster, exc_info=True)

    def _report(self) -> None:
        for cluster in self._factories:
            metrics.event_watch_owned(cluster, cluster in self._running)

    def snapshot(self) -> dict[str, Any]:
        return {"holder": self.holder, "owned": self.owned, "replicas": self.replicas}

    async def stop(self, *, release: bool = True) -> None:
        """Stop every watch; with ``release`` (a clean shutdown) the leases are freed for the others at once."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for cluster in list(self._running):
            await self._stop(cluster)
        if release:
            try:
                await watch_leases.leave(self._pool, self.holder)
            except Exception:
                logger.warning("event watch leases not released (they expire in %.0f s)", self._ttl, exc_info=True)
        self._report()


__all__ = ["Watch", "WatchOwnership", "replica_id"]
