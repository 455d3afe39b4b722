"""Event-watch leases on real PostgreSQL (kubernaut/storage/watch_leases.py) and the share each replica takes
(kubernaut/processing/watch_ownership.py): claim, renew, expiry takeover, one winner of two claimants, a
replica's share of the clusters, and a database that stops answering stops the watches before the lease ends."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr

from kubernaut.config import load_config
from kubernaut.config.settings import StorageConfig
from kubernaut.processing.events import EventSource
from kubernaut.processing.watch_ownership import WatchOwnership
from kubernaut.storage import watch_leases
from kubernaut.storage.database import Database

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def pool(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    database = await Database.connect(StorageConfig(dsn=SecretStr(fresh_dsn), pool_max_size=8))
    yield database.pool
    await database.close()


async def holders(pool: asyncpg.Pool) -> dict[str, str | None]:
    return {lease.cluster: lease.holder for lease in await watch_leases.leases(pool) if lease.live}


async def test_claim_renew_expire_and_take_over(pool: asyncpg.Pool) -> None:
    assert await watch_leases.claim(pool, "a", "r1", 1.0)
    assert not await watch_leases.claim(pool, "a", "r2", 30.0)  # held and live: not r2's
    assert await watch_leases.claim(pool, "a", "r1", 1.0)  # the holder may claim again (after a lost renewal)
    assert await watch_leases.renew(pool, "r1", ["a", "b"], 1.0) == {"a"}
    assert await watch_leases.renew(pool, "r2", ["a"], 30.0) == set()  # not its lease: renewing takes nothing
    assert await holders(pool) == {"a": "r1"}
    await asyncio.sleep(1.2)  # r1 stopped renewing (crashed): its lease ran out
    assert await holders(pool) == {}
    assert await watch_leases.claim(pool, "a", "r2", 30.0)
    assert await watch_leases.renew(pool, "r1", ["a"], 30.0) == set()  # r1 comes back: told it lost the lease
    assert await holders(pool) == {"a": "r2"}
    assert await watch_leases.release(pool, "r2") == 1
    assert await holders(pool) == {}
    assert await watch_leases.claim(pool, "a", "r1", 30.0)  # released: free at once


async def test_of_two_claimants_exactly_one_wins(pool: asyncpg.Pool) -> None:
    for round_ in range(20):
        cluster = f"c{round_}"
        won = await asyncio.gather(*(watch_leases.claim(pool, cluster, f"r{i}", 30.0) for i in range(2)))
        assert sorted(won) == [False, True]
        assert len({h for c, h in (await holders(pool)).items() if c == cluster}) == 1


async def test_the_heartbeat_counts_the_live_replicas(pool: asyncpg.Pool) -> None:
    assert await watch_leases.heartbeat(pool, "r1", 1.0) == 1
    assert await watch_leases.heartbeat(pool, "r2", 30.0) == 2
    assert await watch_leases.heartbeat(pool, "r1", 1.0) == 2
    await asyncio.sleep(1.2)  # r1 gone quiet
    assert await watch_leases.heartbeat(pool, "r2", 30.0) == 1
    await watch_leases.leave(pool, "r2")
    assert await watch_leases.heartbeat(pool, "r3", 30.0) == 1


class Recorder:
    """A watch that records whether it runs (the event source itself is tested in tests/processing)."""

    def __init__(self, running: dict[str, int], cluster: str) -> None:
        self.running, self.cluster = running, cluster

    def start(self) -> None:
        self.running[self.cluster] = self.running.get(self.cluster, 0) + 1

    async def stop(self) -> None:
        self.running[self.cluster] -= 1


def owner(pool: asyncpg.Pool, holder: str, clusters: list[str], running: dict[str, int], **kw: float
          ) -> WatchOwnership:
    return WatchOwnership(pool, {c: (lambda c=c: Recorder(running, c)) for c in clusters}, holder=holder,
                          ttl_s=kw.get("ttl_s", 30.0), renew_s=kw.get("renew_s", 10.0), **{
                              k: v for k, v in kw.items() if k not in ("ttl_s", "renew_s")})


async def test_replicas_share_the_clusters_and_a_new_one_gets_its_share(pool: asyncpg.Pool) -> None:
    clusters = ["a", "b", "c", "d"]
    running: dict[str, int] = {}
    r1 = owner(pool, "r1", clusters, running)
    await r1.tick()
    assert r1.owned == clusters  # alone: every cluster, one watch each
    r2 = owner(pool, "r2", clusters, running)
    await r2.tick()
    assert r2.owned == []  # all held and live: nothing to take yet
    await r1.tick()  # r1 sees two replicas: keeps its share of ceil(4/2), releases the rest
    assert len(r1.owned) == 2
    await r2.tick()
    assert sorted(r1.owned + r2.owned) == clusters and len(r2.owned) == 2
    assert all(count == 1 for count in running.values())  # never two watches of one cluster
    assert await holders(pool) == {**dict.fromkeys(r1.owned, "r1"), **dict.fromkeys(r2.owned, "r2")}
    await r1.stop()  # a clean shutdown frees its leases at once
    await r2.tick()
    assert r2.owned == clusters and all(count == 1 for count in running.values())
    await r2.stop()
    assert await holders(pool) == {} and all(count == 0 for count in running.values())


async def test_an_owner_cut_off_from_the_database_stops_before_its_lease_can_expire(
        pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    running: dict[str, int] = {}
    now = [0.0]
    r1 = owner(pool, "r1", ["a"], running, ttl_s=30.0, renew_s=10.0, monotonic=lambda: now[0])
    await r1.tick()
    assert r1.owned == ["a"]

    async def unreachable(*args: object, **kwargs: object) -> int:
        raise OSError("connection refused")

    with monkeypatch.context() as patch:  # the database stops answering this replica
        patch.setattr(watch_leases, "heartbeat", unreachable)
        now[0] = 10.0
        await r1.tick()
        assert r1.owned == ["a"]  # 20 s of lease left: keeps watching
        now[0] = 20.0
        await r1.tick()
        assert r1.owned == [] and running["a"] == 0  # the next tick would come at the lease's end: stopped
    now[0] = 21.0
    await r1.tick()  # the database is back and nobody took the lease: the holder resumes
    assert r1.owned == ["a"] and running["a"] == 1
    await r1.stop()


async def test_a_new_owner_adopts_only_its_own_clusters_firing_event_alerts(pool: asyncpg.Pool) -> None:
    """The owner of a cluster's watch resolves that cluster's quiet alerts; another cluster's owner leaves them
    (it would resolve them without seeing their occurrences)."""
    events = load_config({"processing": {"events": {"enabled": True}}}).processing.events
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for cluster in ("a", "b", "b"):
        source = EventSource(None, pool, events, cluster=cluster)  # type: ignore[arg-type]
        assert await source.handle({
            "metadata": {"name": f"web.{uuid.uuid4().hex[:8]}", "namespace": "shop"}, "type": "Warning",
            "reason": "BackOff", "message": "Back-off restarting failed container", "count": 1,
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "shop", "uid": uuid.uuid4().hex},
            "firstTimestamp": stamp, "lastTimestamp": stamp})
    assert await EventSource(None, pool, events, cluster="a").adopt_firing() == 1  # type: ignore[arg-type]
    assert await EventSource(None, pool, events, cluster="b").adopt_firing() == 2  # type: ignore[arg-type]
    assert await EventSource(None, pool, events).adopt_firing() == 3  # type: ignore[arg-type]  (one cluster: all)
