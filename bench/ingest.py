"""Ingest benchmark: how many AlertManager webhooks Kubernaut acknowledges durably, and how fast.

Phases (each --duration seconds, default 60):
  baseline   bare uvicorn + the same parsing + the same commit, closed loop, --connections senders
  capacity   Kubernaut under `serve run`, closed loop, --connections senders, as fast as accepted
  latency    Kubernaut, open loop at --rate webhooks/min over --open-connections persistent connections
Afterwards every acknowledged alert must be in the database ("lost" counts those that are not).

    .venv/bin/python bench/ingest.py [--duration 60] [--connections 100] [--rate 10000] [--open-connections 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.harness import baseline_server, create_database, kubernaut_serve, lost_alerts
from bench.loadgen import closed_loop, open_loop

# The fast ingress path of Ray Serve 2.60: HAProxy in front of replicas that listen directly.
FAST_INGRESS = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_HA_PROXY": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=int, default=10_000, help="open-loop webhooks per minute")
    parser.add_argument("--open-connections", type=int, default=1000)
    parser.add_argument("--gateway-replicas", type=int, default=2)
    parser.add_argument("--no-fast-ingress", action="store_true", help="use Serve's default HTTP proxy")
    args = parser.parse_args()

    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    workdir = Path(tempfile.mkdtemp(prefix="kubernaut-bench-"))
    pg_dir = workdir / "pg"
    admin_dsn = ensure_embedded_server(pg_dir)
    run = uuid.uuid4().hex[:10]
    try:
        baseline_dsn = create_database(admin_dsn)
        with baseline_server(baseline_dsn, workdir) as url:
            base = closed_loop(url, f"{run}-base", args.connections, args.duration)
        base_lost = lost_alerts(baseline_dsn, f"{run}-base", base.receipts)

        system_dsn = create_database(admin_dsn)
        replicas = args.gateway_replicas
        overrides = {"deployments": {"gateway": {"num_cpus": 0.2, "max_ongoing_requests": 500, "autoscaling": {
            "min_replicas": replicas, "max_replicas": replicas, "target_ongoing_requests": 100}}}}
        env = {} if args.no_fast_ingress else FAST_INGRESS
        with kubernaut_serve(system_dsn, workdir, overrides, env) as url:
            cap = closed_loop(url, run, args.connections, args.duration)
            host, port = url.removeprefix("http://").split(":")
            lat = asyncio.run(open_loop(host, int(port), run, args.rate, args.open_connections, args.duration))
        lost = lost_alerts(system_dsn, run, {**cap.receipts, **lat.receipts})
    finally:
        stop_embedded_server(pg_dir)

    ratio = cap.alerts_per_min / base.alerts_per_min if base.alerts_per_min else float("nan")
    print(f"# ingest benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
          f"({platform.machine()}, {__import__('os').cpu_count()} CPUs); fast ingress: {not args.no_fast_ingress}")
    print(f"{'phase':<10} {'conns':>6} {'webhooks/min':>13} {'alerts/min':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'lost':>5}")
    print(f"{'baseline':<10} {args.connections:>6} {base.requests_per_min:>13.0f} {base.alerts_per_min:>11.0f} "
          f"{base.p50_ms:>8.1f} {base.p99_ms:>8.1f} {base.requests_failed:>7} {base_lost:>5}")
    print(f"{'capacity':<10} {args.connections:>6} {cap.requests_per_min:>13.0f} {cap.alerts_per_min:>11.0f} "
          f"{cap.p50_ms:>8.1f} {cap.p99_ms:>8.1f} {cap.requests_failed:>7} {'':>5}")
    sent_per_min = lat.sent / args.duration * 60
    acked_per_min = lat.alerts_acked / args.duration * 60
    print(f"{'latency':<10} {args.open_connections:>6} {sent_per_min:>13.0f} {acked_per_min:>11.0f} "
          f"{lat.percentile(50):>8.1f} {lat.percentile(99):>8.1f} {lat.errors:>7} {lost:>5}")
    print(f"RESULT webhooks_per_min={cap.requests_per_min:.0f} alerts_per_min={cap.alerts_per_min:.0f} "
          f"p50_ms={lat.percentile(50):.1f} p99_ms={lat.percentile(99):.1f} lost={lost} "
          f"baseline_alerts_per_min={base.alerts_per_min:.0f} ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
