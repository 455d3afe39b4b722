"""Memory and CPU of a running Kubernaut, per deployment: every process below the `kubernaut run` process (Ray's own,
the Serve replicas, HAProxy) and the embedded PostgreSQL, read from /proc (PSS from smaps_rollup, CPU from stat).

    .venv/bin/python -m bench.footprint --pid <kubernaut run pid> [--pg-dir DIR]   # one snapshot, printed
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


def _memory(pid: int) -> tuple[int, int]:
    text = _read(f"/proc/{pid}/smaps_rollup") or ""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


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
        rss, pss = _memory(pid) if with_memory else (0, 0)
        procs.append(Proc(pid, stat[0], group_of(cmdline), rss, pss, stat[1]))
    return procs


@dataclass
class Totals:
    processes: int = 0
    rss_kb: int = 0
    pss_kb: int = 0
    cpu_s: float = 0.0
    pids: list[int] = field(default_factory=list)


def by_group(procs: list[Proc]) -> dict[str, Totals]:
    out: dict[str, Totals] = {}
    for proc in procs:
        totals = out.setdefault(proc.group, Totals())
        totals.processes += 1
        totals.rss_kb += proc.rss_kb
        totals.pss_kb += proc.pss_kb
        totals.cpu_s += proc.cpu_s
        totals.pids.append(proc.pid)
    return out


def print_table(groups: dict[str, Totals]) -> None:
    print(f"{'component':<28} {'procs':>5} {'RSS MB':>8} {'PSS MB':>8} {'CPU s':>8}")
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1].pss_kb):
        print(f"{name:<28} {t.processes:>5} {t.rss_kb / 1024:>8.0f} {t.pss_kb / 1024:>8.0f} {t.cpu_s:>8.1f}")
    total = sum(t.pss_kb for t in groups.values()) / 1024
    print(f"{'total':<28} {sum(t.processes for t in groups.values()):>5} "
          f"{sum(t.rss_kb for t in groups.values()) / 1024:>8.0f} {total:>8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pid", type=int, required=True, help="the `kubernaut run` (serve run) process")
    parser.add_argument("--pg-dir", type=Path, default=None, help="embedded PostgreSQL data directory")
    args = parser.parse_args()
    print_table(by_group(snapshot(args.pid, args.pg_dir)))


if __name__ == "__main__":
    main()
