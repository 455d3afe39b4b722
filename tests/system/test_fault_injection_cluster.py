"""Fault injection beyond Kubernaut's own processes (see test_fault_injection.py for replicas, PostgreSQL and a
notification sink): the Kubernetes API server dies in the middle of a live workflow, and the LLM server hangs
(accepts connections, never answers). Same load, same invariants: every acknowledged alert stored, every
workflow at rest, no step executed twice, the workload changed at most once; analyses are decided by the rules
within the LLM time budget. One application (its analysis pointed at the hanging server) serves both cases."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from kubernaut.execution.kube import Kube
from tests.plugins.kube_testenv import TESTENV_SCRIPT, KubeTestEnv
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    admin_fixture,
    executor_role_fixture,
)
from tests.support.fault_injection import (
    assert_acknowledged_stored,
    fresh_database,
    run_case,
    send_flow,
    settled,
)
from tests.support.live_app import live_application
from tests.support.polling import eventually

pytestmark = [pytest.mark.k8s, pytest.mark.timeout(600)]

APP = "faults"
LLM_BUDGET_S = 2.0
# After the live workflow's scale-up, the orchestrator waits this long before verifying: the API server is
# killed inside that window, so verification meets the outage every time (not only when the timing is lucky).
STABILIZATION_S = 3.0
API_DOWN_S = 4.0


class HangingLLM:
    """An "OpenAI-compatible" server that accepts connections, reads the requests and never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.base_url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.connections: list[socket.socket] = []
        self.received = 0  # bytes of requests read: the analysis did ask
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hanging-llm", daemon=True)

    def start(self) -> HangingLLM:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                conn.setblocking(False)
                self.connections.append(conn)
            except TimeoutError:
                pass
            for c in self.connections:
                try:
                    self.received += len(c.recv(65536))
                except (BlockingIOError, OSError):
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self.connections:
            c.close()
        self.sock.close()


@pytest.fixture(scope="module")
def hanging_llm() -> Iterator[HangingLLM]:
    server = HangingLLM().start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def faults_app(serve_app: Any, pg_dsn: str, kube_testenv: Any, executor_role: Any, hanging_llm: HangingLLM
                     ) -> AsyncIterator[tuple[str, str]]:
    dsn = await fresh_database(pg_dsn, "t_faults")
    async with live_application(
        serve_app, APP, dsn, kube_testenv.executor_kubeconfig,
        orchestration={"stabilization_s": STABILIZATION_S, "verify_interval_s": 0.5, "autonomy_min_cases": 0,
                       "autonomy_min_lower_bound": 0, "cooldown_s": 0},
        work={"poll_interval_s": 0.5, "lease_s": 5},
        gateway={"rate_limit_per_s": 0},
        # A budget the hang always exceeds; a breaker that stays closed, so every analysis meets the hang
        # itself (an open breaker would answer without asking).
        analysis={"llm_provider": "compatible", "llm_base_url": hanging_llm.base_url, "llm_model": "hung-model",
                  "llm_incident_time_budget_s": LLM_BUDGET_S, "llm_request_timeout_s": 60, "llm_max_retries": 0,
                  "llm_breaker_failures": 100},
    ) as url:
        yield url, dsn


# --- the Kubernetes API server -----------------------------------------------------------------------------

def apiserver_pid(state_dir: str) -> int | None:
    """The pid in scripts/testenv.sh's pid file when that process is really a live kube-apiserver (its `running`)."""
    pid_file = Path(state_dir) / "pids" / "kube-apiserver.pid"
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # empty once it is a zombie
    except (OSError, ValueError):
        return None
    return pid if b"kube-apiserver" in cmdline else None


def api_port(kubeconfig: str) -> int:
    server = next(line for line in Path(kubeconfig).read_text().splitlines() if "server:" in line)
    return int(server.rsplit(":", 1)[1])


def run_testenv(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(TESTENV_SCRIPT), command], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=False, env=os.environ.copy())


def restore_control_plane() -> None:
    """`up` restarts only what is missing (etcd and its data are kept) and returns once the API server is
    healthy, the simulated nodes Ready and the controller-manager working."""
    up = run_testenv("up", 180)
    assert up.returncode == 0, f"scripts/testenv.sh up failed:\n{up.stderr[-3000:]}"
    status = run_testenv("status", 30)
    assert status.returncode == 0, status.stdout + status.stderr


async def test_api_server_killed_mid_workflow_resumes_and_changes_the_workload_once(
    faults_app: tuple[str, str], admin: Kube, kube_namespace: str, kube_testenv: KubeTestEnv
) -> None:
    dsn = faults_app[1]
    pid = apiserver_pid(kube_testenv.state_dir)
    assert pid, "no running kube-apiserver in the testenv state dir"
    port = api_port(kube_testenv.admin_kubeconfig)
    outage: dict[str, Any] = {}

    async def fault() -> None:
        db = await asyncpg.connect(dsn)
        try:
            async def executed() -> Any:
                # The live scale-up ran; the orchestrator now waits STABILIZATION_S before it verifies.
                return await db.fetchrow(
                    """SELECT w.id, w.phase FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id
                       JOIN incidents i ON i.id = w.incident_id
                       WHERE i.target_namespace = $1 AND i.target_name = 'shop' AND s.name = 'execute:0'
                         AND s.status = 'succeeded'""", kube_namespace)

            live = await eventually(executed, timeout=60, interval=0.05, what="the live scale-up executed")
            os.kill(pid, signal.SIGKILL)
            outage["killed_at"] = await db.fetchval("SELECT now()")
            outage["workflow"] = live["id"]
            outage["phase_when_killed"] = live["phase"]
        finally:
            await db.close()

        def down() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return apiserver_pid(kube_testenv.state_dir) is None
            return False

        await eventually(lambda: asyncio.to_thread(down), timeout=10, what="the API server down")
        await asyncio.sleep(API_DOWN_S)
        db = await asyncpg.connect(dsn)
        try:
            outage["restarting_at"] = await db.fetchval("SELECT now()")  # down from the kill until after this
        finally:
            await db.close()
        await asyncio.to_thread(restore_control_plane)

    try:
        await run_case(faults_app, admin, kube_namespace, fault)
    finally:
        # Whatever failed above, later tests (and their API clients) get a healthy control plane back
        # (`up` on a healthy one only checks it).
        await asyncio.to_thread(restore_control_plane)

    # run_case asserted: acknowledged alerts stored, workflows at rest, the live one completed with exactly one
    # scale-up (replicas 2), no step succeeded twice, no dead job. The outage really hit it mid-workflow:
    assert outage["phase_when_killed"] in ("executing", "verifying"), outage
    db = await asyncpg.connect(dsn)
    try:
        verified = await db.fetchrow("SELECT status, finished_at FROM workflow_steps WHERE workflow_id = $1 "
                                     "AND name = 'verify:0'", outage["workflow"])
    finally:
        await db.close()
    assert verified["status"] == "succeeded", verified
    # Due STABILIZATION_S after the scale-up, i.e. inside the outage: it could only pass once the server was back.
    assert verified["finished_at"] > outage["restarting_at"], (verified, outage)


# --- the LLM server ------------------------------------------------------------------------------------------

async def test_hanging_llm_server_the_rules_decide_within_the_budget_and_nothing_is_lost(
    faults_app: tuple[str, str], kube_namespace: str, hanging_llm: HangingLLM
) -> None:
    base, dsn = faults_app
    run = uuid.uuid4().hex[:10]
    received_before = hanging_llm.received
    started = time.monotonic()
    receipts = await send_flow(base, kube_namespace, run)
    db = await asyncpg.connect(dsn)
    try:
        await assert_acknowledged_stored(db, kube_namespace, run, receipts)

        async def at_rest() -> bool:
            return await settled(db, kube_namespace, run)

        await eventually(at_rest, timeout=90, interval=0.5, what="every incident analysed and at rest")
        elapsed = time.monotonic() - started
        analyses = await db.fetch(
            """SELECT a.* FROM analyses a JOIN incidents i ON i.id = a.incident_id
               WHERE i.target_namespace = $1""", kube_namespace)
        incidents = await db.fetchval("SELECT count(*) FROM incidents WHERE target_namespace = $1", kube_namespace)
    finally:
        await db.close()
    assert analyses and len({a["incident_id"] for a in analyses}) == incidents  # every incident analysed
    for a in analyses:
        assert a["engine"] == "rules", dict(a)
        assert a["fallback_reason"] == (f"llm:hung-model: hung-model did not answer within the time budget of "
                                        f"{LLM_BUDGET_S:g}s"), a["fallback_reason"]
        assert a["llm_calls"] == 0, dict(a)
        # It waited for the model the whole budget, and not much longer (context gathering is the rest).
        assert LLM_BUDGET_S * 1000 <= a["latency_ms"] < (LLM_BUDGET_S + 8) * 1000, a["latency_ms"]
    assert hanging_llm.received > received_before, "the LLM server was never asked"
    print(f"hanging LLM: {len(analyses)} analyses by the rules, at rest {elapsed:.1f}s after the first webhook")
