"""An unreachable fleet cluster's incident waits, is escalated once past fleet.unreachable_escalate_after_s with a
notification naming the cluster and since when, and goes on when the cluster answers again (real PostgreSQL; the
real test control plane as cluster b, behind a TCP relay this test opens and closes)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
import yaml

from kubernaut.analysis.cluster_wait import ClusterWait
from kubernaut.cluster.fleet import Fleet
from kubernaut.config.settings import KubernautConfig
from kubernaut.storage.jobs import RetryLater
from tests.support.incident_history import connect, seed_incident

pytestmark = pytest.mark.integration


class Relay:
    """127.0.0.1:port → the control plane's API server while open; nothing listens while closed."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server: asyncio.Server | None = None

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
            self.server = None

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


def _relayed_kubeconfig(admin: str, relay: Relay, path: Path) -> tuple[str, tuple[str, int]]:
    document = yaml.safe_load(Path(admin).read_text())
    server = document["clusters"][0]["cluster"]["server"]  # https://127.0.0.1:PORT (the cert names 127.0.0.1)
    host, port = server.removeprefix("https://").rsplit(":", 1)
    document["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    path.write_text(yaml.safe_dump(document))
    return str(path), (host, int(port))


async def test_an_unreachable_clusters_incident_is_escalated_once_then_resumes(
        fresh_dsn: str, kube_testenv, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    relay = Relay(("", 0))
    b_kubeconfig, upstream = _relayed_kubeconfig(kube_testenv.admin_kubeconfig, relay, tmp_path / "b.kubeconfig")
    relay.upstream = upstream
    config = KubernautConfig(cluster_name="a", fleet={
        "clusters": [{"name": "a", "kubeconfig": kube_testenv.admin_kubeconfig},
                     {"name": "b", "kubeconfig": b_kubeconfig}],
        "circuit_reset_s": 0.05, "unreachable_escalate_after_s": 60})
    fleet = await asyncio.to_thread(Fleet.build, config, read_retries=0)
    now = [1_000_000.0]
    wait = ClusterWait(fleet, config.fleet.unreachable_escalate_after_s, clock=lambda: now[0])
    db = await connect(fresh_dsn)
    try:
        pool = db.pool
        incident_a = await seed_incident(pool, signals=["KubePodCrashLooping"], name="web", status="open")
        incident_b = await seed_incident(pool, signals=["KubePodCrashLooping"], name="api", status="open")
        await pool.execute("UPDATE incidents SET cluster = 'b', phase = 'new' WHERE id = $1", incident_b)

        await wait.check(pool, incident_a, "a")  # a answers: nothing waits
        with pytest.raises(RetryLater, match="cluster b unreachable"):
            await wait.check(pool, incident_b, "b")
        now[0] += 59  # within the wait: retried, nobody paged
        with pytest.raises(RetryLater):
            await wait.check(pool, incident_b, "b")
        assert await pool.fetchval("SELECT phase FROM incidents WHERE id = $1", incident_b) == "new"
        assert await pool.fetchval("SELECT count(*) FROM notifications") == 0

        now[0] += 2  # past it: escalated once, the human told which cluster and since when
        for _ in range(2):
            await asyncio.sleep(0.1)  # past the circuit's reset: each check really tries b
            with pytest.raises(RetryLater):
                await wait.check(pool, incident_b, "b")
        assert await pool.fetchval("SELECT phase FROM incidents WHERE id = $1", incident_b) == "escalated"
        rows = await pool.fetch("SELECT incident_id, title, body FROM notifications")
        assert len(rows) == 1 and rows[0]["incident_id"] == incident_b
        assert "cluster b unreachable" in rows[0]["title"]
        assert "'b'" in rows[0]["body"] and "since 1970-01-12 13:46:40 UTC" in rows[0]["body"]
        assert await pool.fetchval("SELECT detail->>'cluster' FROM audit_events WHERE event = 'incident.escalated' "
                                   "AND incident_id = $1", incident_b) == "b"
        assert await pool.fetchval("SELECT phase FROM incidents WHERE id = $1", incident_a) != "escalated"

        await relay.open()  # b is back: the check passes and the wait starts afresh next time
        try:
            await asyncio.sleep(0.1)
            await wait.check(pool, incident_b, "b")
            assert "b" not in wait.since
        finally:
            await relay.close()
    finally:
        await db.close()
