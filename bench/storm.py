"""Storm benchmark: 10,000 alerts about one workload within a minute must give exactly one incident
and one analysis, and lose nothing.

    .venv/bin/python -m bench.storm [--alerts 10000] [--seconds 60] [--connections 50]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx

from bench.harness import create_database, kubernaut_serve

ALERT_NAMES = ["KubePodCrashLooping", "KubePodNotReady", "KubeContainerWaiting", "KubeDeploymentReplicasMismatch"]


def storm_body(run: str, seq: int, size: int) -> dict:
    alerts = []
    for i in range(size):
        n = seq * 10 + i
        alerts.append({
            "status": "firing",
            "labels": {"alertname": ALERT_NAMES[n % len(ALERT_NAMES)], "namespace": "storm", "container": "web",
                       "pod": f"checkout-5f6d7c-{n % 99991:05d}", "severity": "critical", "bench_run": run},
            "annotations": {"summary": "storm"},
            "startsAt": f"2026-11-26T00:{(n // 60) % 60:02d}:{n % 60:02d}Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "fingerprint": f"{n:016x}",
        })
    return {"version": "4", "status": "firing", "receiver": "bench", "groupLabels": {"namespace": "storm"},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093", "truncatedAlerts": 0,
            "alerts": alerts}


async def send_storm(url: str, run: str, alerts: int, seconds: float, connections: int) -> tuple[int, int]:
    per_request = 5
    requests = alerts // per_request
    interval = seconds / requests
    acked = errors = 0
    start = time.monotonic()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        semaphore = asyncio.Semaphore(connections)

        async def one(seq: int) -> None:
            nonlocal acked, errors
            delay = start + seq * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            async with semaphore:
                try:
                    response = await client.post("/api/v1/alerts", json=storm_body(run, seq, per_request))
                except httpx.HTTPError:
                    errors += 1
                    return
            if response.status_code == 200:
                acked += response.json()["accepted"]
            else:
                errors += 1

        await asyncio.gather(*(one(seq) for seq in range(requests)))
    return acked, errors


async def settle(dsn: str, run: str, timeout: float) -> tuple[int, int, int, float]:
    """Wait until every alert is processed and the analysis exists; returns (incidents, analyses, stored, s)."""
    conn = await asyncpg.connect(dsn)
    started = time.monotonic()
    try:
        while True:
            stored, unprocessed = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE processed_at IS NULL) FROM alerts "
                "WHERE labels->>'bench_run' = $1", run)
            incidents = await conn.fetchval("SELECT count(*) FROM incidents WHERE target_namespace = 'storm'")
            analyses = await conn.fetchval(
                "SELECT count(*) FROM analyses a JOIN incidents i ON i.id = a.incident_id "
                "WHERE i.target_namespace = 'storm'")
            if (unprocessed == 0 and analyses >= 1) or time.monotonic() - started > timeout:
                return incidents, analyses, stored, time.monotonic() - started
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()

    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    workdir = Path(tempfile.mkdtemp(prefix="kubernaut-storm-"))
    admin_dsn = ensure_embedded_server(workdir / "pg")
    run = uuid.uuid4().hex[:10]
    try:
        dsn = create_database(admin_dsn)
        with kubernaut_serve(dsn, workdir) as url:  # the shipped configuration, ingress included
            sent_at = time.monotonic()
            acked, errors = asyncio.run(send_storm(url, run, args.alerts, args.seconds, args.connections))
            send_s = time.monotonic() - sent_at
            incidents, analyses, stored, settle_s = asyncio.run(settle(dsn, run, timeout=600))
        lost = max(0, acked - stored)
    finally:
        stop_embedded_server(workdir / "pg")
    print(f"# storm benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
          f"({platform.machine()}, {__import__('os').cpu_count()} CPUs)")
    print(f"{'alerts sent':>12} {'acked':>7} {'errors':>7} {'send s':>7} {'settle s':>9} {'incidents':>10} "
          f"{'analyses':>9} {'lost':>5}")
    print(f"{args.alerts:>12} {acked:>7} {errors:>7} {send_s:>7.1f} {settle_s:>9.1f} {incidents:>10} {analyses:>9} "
          f"{lost:>5}")
    print(f"RESULT incidents={incidents} analyses={analyses} alerts={stored} lost={lost}")


if __name__ == "__main__":
    main()
