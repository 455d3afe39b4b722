"""Memory and CPU of a running Kubernaut, per deployment: every process below the `kubernaut run` process (Ray's own,
the Serve replicas, HAProxy) and the embedded PostgreSQL, read from /proc (PSS from smaps_rollup, CPU from stat).

    .venv/bin/python -m bench.footprint --pid <kubernaut run pid> [--pg-dir DIR]   # one snapshot, printed
    .venv/bin/python -m bench.footprint --floor [--replicas 3]     # what a Serve replica costs with no app code

--floor starts a local Ray and Serve as `kubernaut run` does (kubernaut/local_ray.py, the shipped ingress) with
deployments that import nothing beyond ray.serve, idles, prints the same table: the per-process floor under every
Kubernaut replica and Ray's own processes, without Kubernaut's modules.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_REPLICA = re.compile(r"^ray::ServeReplica:[^:]+:([A-Za-z0-9_-]+)")


@dataclass
class Proc:
    pid: int
    ppid: int
    group: str
    rss_kb: int
    pss_kb: int
    cpu_s: float
    anon_kb: int = 0  # Pss_Anon: the process's own heap (Python objects), shared with no other process


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return None


def _stat(pid: int) -> tuple[int, float] | None:
    """(ppid, CPU seconds) of a process; fields after the command name, which may contain spaces."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICK


def group_of(cmdline: str) -> str:
    """The deployment or component a process belongs to, from its command line (Ray sets its workers' titles)."""
    match = _REPLICA.match(cmdline)
    if match:
        return match.group(1)
    exe = cmdline.split(" ", 1)[0]
    if cmdline.startswith("ray::ServeController"):
        return "serve controller"
    if cmdline.startswith(("ray::ProxyActor", "ray::HAProxy")) or "haproxy" in exe:
        return "ingress (proxy, HAProxy)"
    if exe.endswith(("/raylet", "/gcs_server")):
        return "ray core (gcs, raylet, monitors)"
    if cmdline.startswith("ray::IDLE") or "default_worker.py" in cmdline:
        return "ray idle workers"
    if cmdline.startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent")):
        return "ray dashboard, agents"
    if cmdline.startswith("ray::"):
        return "ray other actors"
    if "postgres" in exe:
        return "postgresql"
    if "serve run" in cmdline or "kubernaut.cli" in cmdline or "kubernaut.local_ray" in cmdline or "/serve " in cmdline:
        return "serve run driver"
    if "dashboard" in cmdline or "runtime_env" in cmdline:
        return "ray dashboard, agents"
    return "ray core (gcs, raylet, monitors)"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                tree.setdefault(stat[0], []).append(int(entry))
    return tree


def _descendants(roots: list[int], tree: dict[int, list[int]]) -> list[int]:
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, anonymous PSS) in kB."""
    text = _read(f"/proc/{pid}/smaps_rollup") or ""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss", "Pss_Anon"):
            values[key] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0), values.get("Pss_Anon", 0)


def postmaster_pid(pg_dir: Path) -> int | None:
    text = _read(str(pg_dir / "postmaster.pid"))
    return int(text.split()[0]) if text else None


def snapshot(serve_pid: int, pg_dir: Path | None = None, with_memory: bool = True) -> list[Proc]:
    """Every process of the application now."""
    tree = _children()
    roots = [serve_pid]
    if pg_dir is not None and (pg := postmaster_pid(pg_dir)) is not None:
        roots.append(pg)
    procs = []
    for pid in _descendants(roots, tree):
        stat = _stat(pid)
        cmdline = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
        if stat is None or not cmdline:
            continue
        rss, pss, anon = _memory(pid) if with_memory else (0, 0, 0)
        procs.append(Proc(pid, stat[0], group_of(cmdline), rss, pss, stat[1], anon))
    return procs


@dataclass
class Totals:
    processes: int = 0
    rss_kb: int = 0
    pss_kb: int = 0
    cpu_s: float = 0.0
    pids: list[int] = field(default_factory=list)
    anon_kb: int = 0


def by_group(procs: list[Proc]) -> dict[str, Totals]:
    out: dict[str, Totals] = {}
    for proc in procs:
        totals = out.setdefault(proc.group, Totals())
        totals.processes += 1
        totals.rss_kb += proc.rss_kb
        totals.pss_kb += proc.pss_kb
        totals.cpu_s += proc.cpu_s
        totals.anon_kb += proc.anon_kb
        totals.pids.append(proc.pid)
    return out


def print_table(groups: dict[str, Totals]) -> None:
    print(f"{'component':<28} {'procs':>5} {'RSS MB':>8} {'PSS MB':>8} {'anon MB':>8} {'CPU s':>8}")
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1].pss_kb):
        print(f"{name:<28} {t.processes:>5} {t.rss_kb / 1024:>8.0f} {t.pss_kb / 1024:>8.0f} {t.anon_kb / 1024:>8.0f} "
              f"{t.cpu_s:>8.1f}")
    total = sum(t.pss_kb for t in groups.values()) / 1024
    print(f"{'total':<28} {sum(t.processes for t in groups.values()):>5} "
          f"{sum(t.rss_kb for t in groups.values()) / 1024:>8.0f} {total:>8.0f} "
          f"{sum(t.anon_kb for t in groups.values()) / 1024:>8.0f}")


def floor(replicas: int, idle_s: float) -> None:
    """--floor: ``replicas`` Serve deployments of a class that imports nothing, on a local Ray as `kubernaut run`
    starts it (this process the driver); the table after ``idle_s`` of idle."""
    import socket
    import time

    from kubernaut.ingress import LISTENER_PORTS, serve_env

    def free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]

    os.environ.update(serve_env(os.environ))
    os.environ.update({name: str(free_port()) for name in LISTENER_PORTS})
    os.environ.setdefault("RAY_ADDRESS", "local")
    import ray
    from ray import serve

    from kubernaut.local_ray import without_autoscaler_monitor

    @serve.deployment(ray_actor_options={"num_cpus": 0.01})
    class Bare:
        async def __call__(self, request) -> str:
            return "ok"

    with without_autoscaler_monitor():
        ray.init(namespace="serve", include_dashboard=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": free_port()})
        for i in range(replicas):
            serve.run(Bare.options(name=f"bare{i}").bind(), name=f"bare{i}", route_prefix=f"/bare{i}")
        time.sleep(idle_s)
        procs = snapshot(os.getpid())
        for proc in procs:
            if proc.pid == os.getpid():
                proc.group = "serve run driver"  # this process: the driver, as `serve run` is for the app
        print_table(by_group(procs))
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pid", type=int, help="the `kubernaut run` (serve run) process")
    parser.add_argument("--pg-dir", type=Path, default=None, help="embedded PostgreSQL data directory")
    parser.add_argument("--floor", action="store_true", help="measure Serve replicas without Kubernaut's code")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=20)
    args = parser.parse_args()
    if args.floor:
        floor(args.replicas, args.idle_s)
    elif args.pid:
        print_table(by_group(snapshot(args.pid, args.pg_dir)))
    else:
        parser.error("--pid or --floor")


if __name__ == "__main__":
    main()
