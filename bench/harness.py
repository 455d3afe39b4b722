"""Start what a benchmark measures: the embedded PostgreSQL, the baseline server, Kubernaut under `serve run`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from kubernaut.ingress import LISTENER_PORTS

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


def create_database(admin_dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base, _, query = admin_dsn.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"


def lost_alerts(dsn: str, run: str, receipts: dict[str, int]) -> int:
    """Acknowledged alerts that are not in the database: per request id, acknowledged minus stored."""

    async def stored() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT request_id, count(*) AS n FROM alerts WHERE labels->>'bench_run' = $1 "
                                    "GROUP BY request_id", run)
            return {r["request_id"]: r["n"] for r in rows}
        finally:
            await conn.close()

    in_db = asyncio.run(stored())
    return sum(max(0, acked - in_db.get(request_id, 0)) for request_id, acked in receipts.items())


def _stop(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Ctrl-C to the process alone, then its process group. For `kubernaut run` that is `serve run`'s own shutdown
    (Serve stops its replicas and HAProxy, then Ray stops GCS and raylet): SIGINT to the whole group stopped GCS and
    raylet at the same moment as the driver, before Serve could stop anything."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def _cmdline(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return None


def stop_app(process: subprocess.Popen[bytes], settle_s: float = 20) -> list[str]:
    """Stop a `kubernaut run` and every process it started (Ray's workers and HAProxy have process groups of their
    own: a signal to the group does not reach them). Processes still running ``settle_s`` after the stop are killed
    (they are this app's: same pid, same command line as while it ran) and returned, "pid command", so that a
    teardown that leaves something behind shows."""
    from bench.footprint import _children, _descendants

    ours = {pid: cmd for pid in _descendants([process.pid], _children()) if pid != process.pid
            and (cmd := _cmdline(pid))}
    _stop(process)
    deadline = time.monotonic() + settle_s
    while True:
        alive = {pid: cmd for pid, cmd in ours.items() if _cmdline(pid) == cmd and _running(pid)}
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return [f"{pid} {cmd.replace(chr(0), ' ').strip()[:160]}" for pid, cmd in alive.items()]


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@contextmanager
def baseline_server(dsn: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    log = (workdir / "baseline.log").open("w")
    process = subprocess.Popen([PYTHON, str(REPO / "bench" / "baseline_server.py"), "--dsn", dsn, "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


@contextmanager
def kubernaut_serve(dsn: str, workdir: Path, overrides: dict[str, Any] | None = None,
                    env_extra: dict[str, str] | None = None, kubeconfig: Path | None = None,
                    unthrottled: bool = True) -> Iterator[str]:
    """`kubernaut run` (the shipped way to run: `serve run` with the shipped ingress, kubernaut/ingress.py) of the
    repository's serve_config.yaml against ``dsn``, with benchmark overrides; ``env_extra`` is what a user could
    set in the environment (e.g. kubernaut.ingress.DEFAULT_PROXY for Serve's default proxy). ``kubeconfig``: the
    cluster the app reads (none by default); ``unthrottled=False`` keeps the gateway's shipped rate limit. The
    `kubernaut run` process id is written to ``workdir/serve.pid`` (bench/footprint.py finds the app's processes)."""
    config = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"] = {"host": "127.0.0.1", "port": port}
    args = config["applications"][0]["args"]
    if unthrottled:
        args.setdefault("gateway", {}).update({"rate_limit_per_s": 0})
    args["kubernetes"] = {"kubeconfig": str(kubeconfig or workdir / "no-kubeconfig")}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            args.setdefault(key, {}).update(value)
        else:
            args[key] = value
    config_file = workdir / "serve_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = dict(os.environ)
    # The shipped ingress comes from `kubernaut run` itself; only what the caller asks for is set here.
    env = {k: v for k, v in env.items() if not k.startswith("RAY_SERVE_")}
    # A Ray of its own (RAY_ADDRESS=local: without it `serve run` joins the last `ray start` on the machine), and
    # HAProxy's stats/Prometheus listeners on free ports: another app on this machine holds the defaults.
    env.update({"RAY_ADDRESS": "local", "RAY_AUTH_MODE": "disabled", "DATABASE_URL": dsn,
                **{name: str(free_port()) for name in LISTENER_PORTS}, **(env_extra or {})})
    log = (workdir / "serve.log").open("w")
    process = subprocess.Popen([PYTHON, "-m", "kubernaut.cli", "run", str(config_file)], stdout=log,
                               stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=workdir)
    (workdir / "serve.pid").write_text(str(process.pid))
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", 240)
        yield f"http://127.0.0.1:{port}"
    finally:
        left = stop_app(process)
        log.close()
        # What outlived the stop (killed by stop_app): bench/pipeline.py reports it.
        (workdir / "left_behind.txt").write_text("".join(f"{line}\n" for line in left))
        if left:
            print(f"harness: {len(left)} processes outlived `kubernaut run`'s stop (killed): {left}", file=sys.stderr)
