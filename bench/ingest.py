"""Ingest benchmark: how many AlertManager webhooks Kubernaut acknowledges durably, and how fast.

Kubernaut runs as shipped (`kubernaut run`, i.e. `scripts/run.sh`: Serve's HAProxy ingress with
throughput-optimized replicas, kubernaut/ingress.py); nothing about the ingress is set here except for the
comparison row. Phases (each --duration seconds, default 60):
  baseline       bare uvicorn + the same parsing + the same commit, closed loop, --connections senders
  capacity       Kubernaut as shipped, closed loop, --connections senders, as fast as accepted
  latency        Kubernaut as shipped, open loop at --rate webhooks/min over --open-connections connections
  default proxy  Kubernaut with the fast ingress turned off (RAY_SERVE_ENABLE_HA_PROXY=0,
                 RAY_SERVE_THROUGHPUT_OPTIMIZED=0: Serve's default Python proxy), closed loop like capacity
                 (--skip-default-proxy leaves it out)
Afterwards every acknowledged alert must be in the database ("lost" counts those that are not).

    .venv/bin/python -m bench.ingest [--duration 60] [--connections 100] [--rate 10000] [--open-connections 1000]
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
from kubernaut.ingress import DEFAULT_PROXY


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=int, default=10_000, help="open-loop webhooks per minute")
    parser.add_argument("--open-connections", type=int, default=1000)
    parser.add_argument("--gateway-replicas", type=int, default=2)
    parser.add_argument("--skip-default-proxy", action="store_true",
                        help="leave out the comparison row with Serve's default HTTP proxy")
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
        with kubernaut_serve(system_dsn, workdir, overrides) as url:
            cap = closed_loop(url, run, args.connections, args.duration)
            host, port = url.removeprefix("http://").split(":")
            lat = asyncio.run(open_loop(host, int(port), run, args.rate, args.open_connections, args.duration))
        lost = lost_alerts(system_dsn, run, {**cap.receipts, **lat.receipts})

        default = None
        if not args.skip_default_proxy:
            default_dsn = create_database(admin_dsn)
            with kubernaut_serve(default_dsn, workdir, overrides, DEFAULT_PROXY) as url:
                default = closed_loop(url, f"{run}-default", args.connections, args.duration)
            default_lost = lost_alerts(default_dsn, f"{run}-default", default.receipts)
    finally:
        stop_embedded_server(pg_dir)

    ratio = cap.alerts_per_min / base.alerts_per_min if base.alerts_per_min else float("nan")
    print(f"# ingest benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
          f"({platform.machine()}, {__import__('os').cpu_count()} CPUs); Kubernaut as shipped (kubernaut run)")
    print(f"{'phase':<13} {'conns':>6} {'webhooks/min':>13} {'alerts/min':>11} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'lost':>5}")
    print(f"{'baseline':<13} {args.connections:>6} {base.requests_per_min:>13.0f} {base.alerts_per_min:>11.0f} "
          f"{base.p50_ms:>8.1f} {base.p99_ms:>8.1f} {base.requests_failed:>7} {base_lost:>5}")
    print(f"{'capacity':<13} {args.connections:>6} {cap.requests_per_min:>13.0f} {cap.alerts_per_min:>11.0f} "
          f"{cap.p50_ms:>8.1f} {cap.p99_ms:>8.1f} {cap.requests_failed:>7} {'':>5}")
    sent_per_min = lat.sent / args.duration * 60
    acked_per_min = lat.alerts_acked / args.duration * 60
    print(f"{'latency':<13} {args.open_connections:>6} {sent_per_min:>13.0f} {acked_per_min:>11.0f} "
          f"{lat.percentile(50):>8.1f} {lat.percentile(99):>8.1f} {lat.errors:>7} {lost:>5}")
    extra = ""
    if default is not None:
        print(f"{'default proxy':<13} {args.connections:>6} {default.requests_per_min:>13.0f} "
              f"{default.alerts_per_min:>11.0f} {default.p50_ms:>8.1f} {default.p99_ms:>8.1f} "
              f"{default.requests_failed:>7} {default_lost:>5}")
        default_ratio = default.alerts_per_min / base.alerts_per_min if base.alerts_per_min else float("nan")
        extra = (f" default_proxy_webhooks_per_min={default.requests_per_min:.0f} "
                 f"default_proxy_ratio={default_ratio:.2f} default_proxy_lost={default_lost}")
    print(f"RESULT webhooks_per_min={cap.requests_per_min:.0f} alerts_per_min={cap.alerts_per_min:.0f} "
          f"p50_ms={lat.percentile(50):.1f} p99_ms={lat.percentile(99):.1f} lost={lost} "
          f"baseline_alerts_per_min={base.alerts_per_min:.0f} ratio={ratio:.2f}{extra}")


if __name__ == "__main__":
    main()
