"""Pipeline benchmark: the whole loop under load. Distinct incidents (one alert about each of --incidents different
Deployments across --namespaces namespaces, created first in the real test control plane so that context gathering
reads real objects), sent as AlertManager groups them, through Kubernaut as shipped (`kubernaut run` of
serve_config.yaml: dry-run, rule engine, the shipped ingress, autoscaling and rate limit; the only thing given is
the kubeconfig, as a user's KUBECONFIG would be), in two phases:

  steady  --incidents alerts at --rate alerts/s, in groups of 1-15 alerts of one namespace (mean 5)
  burst   --incidents other alerts at once, one webhook per namespace (a node failure: every group fires together)
  soak    (--soak-load-s > 0) --soak-rate alerts/s for --soak-load-s seconds, each about another workload, as steady
          sends them: memory per deployment at the start and at the end of the soak (growth = a leak)

For each incident (from timestamps stored in PostgreSQL, read-only): webhook sent → acknowledged → incident opened →
analysis stored → workflow at rest (terminal, or awaiting approval); throughput = incidents whose workflow came to
rest per minute. Per deployment (bench/footprint.py, /proc of every process of the app, PostgreSQL included): replicas,
CPU seconds and peak RSS/PSS per phase, PSS at idle before the load and after it (--soak-s: how long to idle after).
Database size growth per 1,000 incidents. "lost": acknowledged alerts not stored, alerts without an incident,
incidents without an analysis, analyses without a workflow, workflows not at rest.

Needs the test control plane (scripts/testenv.sh up); from a fresh clone, after scripts/test-prepare.d has run:

    .venv/bin/python -m bench.pipeline [--incidents 2000] [--namespaces 50] [--rate 10] [--phases steady,burst]
                                       [--idle-s 30] [--soak-s 0] [--kubeconfig /tmp/kubernaut-testenv/admin.kubeconfig]
                                       [--clusters 1] [--soak-load-s 1800 --soak-rate 2]

--clusters N runs Kubernaut as a fleet of N clusters c0..cN-1 (fleet.clusters, each reaching the test control plane
through the same kubeconfig; c0 the home cluster), spreads the alerts over them by their cluster label, and reports
each cluster's incidents, throughput and sent → at rest next to the totals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import httpx

from bench import footprint
from bench.harness import create_database, kubernaut_serve, lost_alerts
from bench.loadgen import GROUP_SIZES

DEFAULT_KUBECONFIG = Path("/tmp/kubernaut-testenv/admin.kubeconfig")
MANAGED_LABEL = "kubernaut.ai/managed"
ALERT_NAMES = ["KubeDeploymentReplicasMismatch", "KubeDeploymentRolloutStuck", "KubeDeploymentGenerationMismatch"]
DEPLOYMENTS = ["gateway", "processor", "analysis", "context", "orchestrator", "executor", "effectiveness",
               "intelligence", "notifications"]
# A workflow is at rest here: finished, or waiting for a person (dry-run or not, nothing more happens by itself).
AT_REST = "awaiting_approval"
PROFILE_HZ = 50
# A workload's name says which phase its alert belongs to.
PHASE_LETTER = {"steady": "s", "burst": "b", "soak": "k"}


# --- the cluster: namespaces and Deployments the alerts are about ---------------------------------------------------

def create_workloads(kubeconfig: Path, namespaces: list[str], names: list[str]) -> float:
    """Managed namespaces with one Deployment per name (``ns/name``); replicas 0: real objects for the context
    reader without filling the shared test nodes with pods. Returns seconds taken."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(kubeconfig))
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    started = time.monotonic()
    for ns in namespaces:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=ns, labels={MANAGED_LABEL: "true", "kubernaut.ai/bench": "pipeline"})))

    def create(ref: str) -> None:
        ns, name = ref.split("/")
        labels = {"app": name}
        apps.create_namespaced_deployment(ns, client.V1Deployment(
            metadata=client.V1ObjectMeta(name=name, labels=labels),
            spec=client.V1DeploymentSpec(
                replicas=0, selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(
                        name="main", image="registry.local/app:1",
                        resources=client.V1ResourceRequirements(limits={"memory": "256Mi", "cpu": "500m"}))])))))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, names))
    return time.monotonic() - started


def delete_namespaces(kubeconfig: Path, namespaces: list[str]) -> None:
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))
    for ns in namespaces:
        try:
            core.delete_namespace(ns)
        except client.ApiException:
            pass


# --- the load: AlertManager's webhooks -------------------------------------------------------------------------------

def cluster_of(ref: str, clusters: int) -> str | None:
    """--clusters N: the fleet cluster an incident's alert names (spread evenly; None with one cluster)."""
    return f"c{zlib.crc32(ref.encode()) % clusters}" if clusters > 1 else None


def alert(run: str, phase: str, ref: str, index: int, clusters: int = 1) -> dict:
    ns, name = ref.split("/")
    cluster = cluster_of(ref, clusters)
    return {
        "status": "firing",
        "labels": {"alertname": ALERT_NAMES[index % len(ALERT_NAMES)], "namespace": ns, "deployment": name,
                   "severity": "warning", "job": "kube-state-metrics", "bench_run": run, "bench_phase": phase,
                   **({"cluster": cluster} if cluster else {})},
        "annotations": {"summary": f"Deployment {ns}/{name} has not matched the expected number of replicas.",
                        "description": "generated by bench/pipeline.py"},
        "startsAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{uuid.uuid5(uuid.NAMESPACE_URL, f'{run}/{phase}/{ref}').hex[:16]}",
    }


def webhook(run: str, ns: str, alerts: list[dict]) -> dict:
    return {"version": "4", "status": "firing", "receiver": "kubernaut", "groupKey": f'{{}}:{{namespace="{ns}"}}',
            "groupLabels": {"namespace": ns}, "commonLabels": {"namespace": ns, "bench_run": run},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
            "alerts": alerts}


def steady_groups(refs: list[str]) -> list[tuple[str, list[str]]]:
    """Groups of 1-15 workloads of one namespace (mean 5, bench/loadgen.py's sizes), namespaces in turn."""
    by_ns: dict[str, list[str]] = {}
    for ref in refs:
        by_ns.setdefault(ref.split("/")[0], []).append(ref)
    groups, turn = [], 0
    while any(by_ns.values()):
        for ns, pending in by_ns.items():
            if pending:
                size = GROUP_SIZES[turn % len(GROUP_SIZES)]
                turn += 1
                groups.append((ns, pending[:size]))
                del pending[:size]
    return groups


@dataclass
class Sent:
    sent_at: float = 0.0
    acked_at: float = 0.0
    alerts: int = 0
    status: int = 0
    request_id: str = ""


@dataclass
class Load:
    requests: list[Sent] = field(default_factory=list)
    receipts: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    first_sent: float = 0.0
    last_sent: float = 0.0


async def send(url: str, run: str, phase: str, groups: list[tuple[str, list[str]]], rate: float | None,
               connections: int, clusters: int = 1) -> Load:
    """One webhook per group; at ``rate`` alerts/s (a group goes when its last alert fires), or all at once."""
    load = Load()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    semaphore = asyncio.Semaphore(connections)
    start = time.monotonic() + 0.5
    offsets, total = [], 0
    for _, refs in groups:
        total += len(refs)
        offsets.append(total / rate if rate else 0.0)
    counter = iter(range(10**9))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def one(offset: float, ns: str, refs: list[str]) -> None:
            delay = start + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            body = webhook(run, ns, [alert(run, phase, ref, next(counter), clusters) for ref in refs])
            async with semaphore:
                record = Sent(sent_at=time.time(), alerts=len(refs))
                try:
                    response = await client.post("/api/v1/alerts", json=body)
                except httpx.HTTPError:
                    load.errors += 1
                    return
                record.acked_at, record.status = time.time(), response.status_code
            load.requests.append(record)
            if response.status_code == 200:
                answer = response.json()
                load.receipts[answer["request_id"]] = answer["accepted"]
                record.request_id = answer["request_id"]
            else:
                load.errors += 1

        await asyncio.gather(*(one(offset, ns, refs) for offset, (ns, refs) in zip(offsets, groups, strict=True)))
    load.first_sent = min((r.sent_at for r in load.requests), default=0.0)
    load.last_sent = max((r.sent_at for r in load.requests), default=0.0)
    return load


# --- what PostgreSQL recorded (read-only) ----------------------------------------------------------------------------

TRACE = """
SELECT a.labels->>'bench_phase' AS phase, a.request_id, extract(epoch FROM a.received_at) AS received,
       a.incident_id, extract(epoch FROM i.created_at) AS incident_at, i.cluster,
       an.id AS analysis_id, extract(epoch FROM an.created_at) AS analysis_at, an.action,
       w.phase AS workflow_phase,
       extract(epoch FROM CASE WHEN w.finished_at IS NOT NULL THEN w.finished_at
                               WHEN w.phase = 'awaiting_approval' THEN w.updated_at END) AS rest_at,
       (SELECT count(*) FROM notifications n WHERE n.incident_id = i.id) AS notifications,
       (SELECT count(*) FROM actions x WHERE x.incident_id = i.id AND x.dry_run) AS dry_run_actions
FROM alerts a
LEFT JOIN incidents i ON i.id = a.incident_id
LEFT JOIN LATERAL (SELECT id, created_at, action FROM analyses WHERE incident_id = i.id ORDER BY id LIMIT 1) an
       ON true
LEFT JOIN workflows w ON w.analysis_id = an.id
WHERE a.labels->>'bench_run' = $1
"""


async def trace(dsn: str, run: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(TRACE, run)
    finally:
        await conn.close()


async def database_bytes(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()


async def settle(dsn: str, run: str, phase: str, expected: int, timeout: float) -> list[asyncpg.Record]:
    """Poll until every alert of the phase has a workflow at rest (or the timeout); returns the phase's rows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in await trace(dsn, run) if r["phase"] == phase]
        if sum(r["rest_at"] is not None for r in rows) >= expected or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(2)


# --- resources over the run ------------------------------------------------------------------------------------------

class Sampler(threading.Thread):
    """bench/footprint.py every ``interval`` seconds; each sample: (wall time, {group: Totals})."""

    def __init__(self, serve_pid: int, pg_dir: Path, interval: float) -> None:
        super().__init__(daemon=True)
        self.serve_pid, self.pg_dir, self.interval = serve_pid, pg_dir, interval
        self.samples: list[tuple[float, dict[str, footprint.Totals]]] = []
        self.cpu: dict[int, tuple[str, list[tuple[float, float]]]] = {}  # pid → (group, [(t, cpu_s)])
        self.stopped = threading.Event()

    def take(self) -> dict[str, footprint.Totals]:
        now = time.time()
        procs = footprint.snapshot(self.serve_pid, self.pg_dir)
        for proc in procs:
            # The latest group: Ray turns an idle worker process (ray::IDLE) into a replica, same pid.
            points = self.cpu.get(proc.pid, ("", []))[1]
            points.append((now, proc.cpu_s))
            self.cpu[proc.pid] = (proc.group, points)
        groups = footprint.by_group(procs)
        self.samples.append((now, groups))
        return groups

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.take()
            except OSError:
                pass

    def window(self, start: float, end: float) -> list[tuple[float, dict[str, footprint.Totals]]]:
        return [(t, g) for t, g in self.samples if start <= t <= end]

    def cpu_seconds(self, start: float, end: float) -> dict[str, float]:
        """CPU per group spent between ``start`` and ``end`` (a process born in between counts from 0)."""
        out: dict[str, float] = {}
        for group, points in self.cpu.values():
            before = [c for t, c in points if t <= start]
            inside = [c for t, c in points if start < t <= end]
            if inside:
                out[group] = out.get(group, 0.0) + inside[-1] - (before[-1] if before else 0.0)
        return out


def wait_for_replicas(sampler: Sampler, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(name in sampler.take() for name in DEPLOYMENTS):
            return
        time.sleep(1)
    raise RuntimeError(f"not every deployment has a replica after {timeout:.0f}s")


# --- report ----------------------------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


@dataclass
class PhaseResult:
    name: str
    load: Load
    rows: list
    started: float
    ended: float
    db_growth: int

    def stages(self) -> dict[str, list[float]]:
        ack = [(r.acked_at - r.sent_at) * 1000 for r in self.load.requests if r.status == 200]
        # Per alert: its webhook's send time (by the request id the answer named); PostgreSQL's now() is a
        # transaction's start, on the same clock as time.time() here.
        sent = {r.request_id: r.sent_at for r in self.load.requests if r.request_id}
        out: dict[str, list[float]] = {"webhook ack": ack, "stored → incident": [], "incident → analysis": [],
                                       "analysis → at rest": [], "sent → at rest": []}
        for r in self.rows:
            if r["incident_at"] is not None:
                out["stored → incident"].append(max(0.0, (float(r["incident_at"]) - float(r["received"])) * 1000))
            if r["analysis_at"] is not None and r["incident_at"] is not None:
                out["incident → analysis"].append((float(r["analysis_at"]) - float(r["incident_at"])) * 1000)
            if r["rest_at"] is not None and r["analysis_at"] is not None:
                out["analysis → at rest"].append((float(r["rest_at"]) - float(r["analysis_at"])) * 1000)
            if r["rest_at"] is not None and r["request_id"] in sent:
                out["sent → at rest"].append((float(r["rest_at"]) - sent[r["request_id"]]) * 1000)
        return out

    def at_rest(self) -> int:
        return sum(r["rest_at"] is not None for r in self.rows)

    def span_s(self) -> float:
        """First webhook sent → last workflow at rest."""
        rests = [float(r["rest_at"]) for r in self.rows if r["rest_at"] is not None]
        return (max(rests) - self.load.first_sent) if rests else float("nan")

    def per_min(self) -> float:
        return self.at_rest() / self.span_s() * 60 if self.at_rest() else 0.0

    def lost(self, acked_missing: int) -> dict[str, int]:
        return {
            "acked not stored": acked_missing,
            "no incident": sum(r["incident_id"] is None for r in self.rows),
            "no analysis": sum(r["incident_id"] is not None and r["analysis_id"] is None for r in self.rows),
            "no workflow": sum(r["analysis_id"] is not None and r["workflow_phase"] is None for r in self.rows),
            "not at rest": sum(r["workflow_phase"] is not None and r["rest_at"] is None for r in self.rows),
        }


def print_phase(result: PhaseResult, sampler: Sampler, acked_missing: int, expected: int) -> dict[str, int]:
    load = result.load
    alerts_sent = sum(r.alerts for r in load.requests)
    send_s = load.last_sent - load.first_sent
    print(f"\n## {result.name}: {expected} incidents, {len(load.requests)} webhooks ({alerts_sent} alerts) sent in "
          f"{send_s:.1f} s, {load.errors} errors; {result.at_rest()} at rest {result.span_s():.1f} s after the first "
          f"webhook → {result.per_min():.0f} incidents/min")
    print(f"{'stage':<22} {'n':>6} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}")
    for stage, values in result.stages().items():
        print(f"{stage:<22} {len(values):>6} {pct(values, 50):>9.0f} {pct(values, 95):>9.0f} {pct(values, 99):>9.0f} "
              f"{max(values, default=float('nan')):>9.0f}")
    phases: dict[str, int] = {}
    actions: dict[str, int] = {}
    for r in result.rows:
        phases[r["workflow_phase"] or "-"] = phases.get(r["workflow_phase"] or "-", 0) + 1
        actions[r["action"] or "-"] = actions.get(r["action"] or "-", 0) + 1
    notified = sum(r["notifications"] > 0 for r in result.rows)
    dry_runs = sum(r["dry_run_actions"] > 0 for r in result.rows)
    print(f"workflow phases {json.dumps(phases)}; analyses' actions {json.dumps(actions)}; "
          f"{notified} incidents with a notification, {dry_runs} with a dry-run action")
    lost = result.lost(acked_missing)
    print(f"lost: {json.dumps(lost)}; database +{result.db_growth / 1024:.0f} kB = "
          f"{result.db_growth / 1024 / max(1, expected) * 1000:.0f} kB per 1,000 incidents")
    window = sampler.window(result.started, result.ended)
    cpu = sampler.cpu_seconds(result.started, result.ended)
    print(f"{'component':<28} {'replicas':>9} {'CPU s':>7} {'peak RSS MB':>12} {'peak PSS MB':>12}")
    names = sorted({n for _, g in window for n in g}, key=lambda n: (n not in DEPLOYMENTS, n))
    for name in names:
        counts = [g[name].processes if name in g else 0 for _, g in window]
        rss = max((g[name].rss_kb for _, g in window if name in g), default=0) / 1024
        pss = max((g[name].pss_kb for _, g in window if name in g), default=0) / 1024
        print(f"{name:<28} {f'{min(counts)}-{max(counts)}':>9} {cpu.get(name, 0.0):>7.1f} {rss:>12.0f} {pss:>12.0f}")
    totals = [sum(t.pss_kb for t in g.values()) / 1024 for _, g in window]
    print(f"{'total':<28} {'':>9} {sum(cpu.values()):>7.1f} {'':>12} {max(totals, default=0):>12.0f}")
    timeline = []
    for t, g in window[:: max(1, len(window) // 12)]:
        timeline.append(f"{t - result.started:+.0f}s " + ",".join(
            str(g[n].processes if n in g else 0) for n in DEPLOYMENTS))
    print("replicas (" + ",".join(DEPLOYMENTS) + "): " + "; ".join(timeline))
    return lost


def print_clusters(result: PhaseResult) -> None:
    """--clusters N: each cluster's share, throughput and sent → at rest (every cluster the one control plane)."""
    sent = {r.request_id: r.sent_at for r in result.load.requests if r.request_id}
    print(f"{'cluster':<10} {'incidents':>9} {'at rest':>8} {'per min':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for cluster in sorted({r["cluster"] or "-" for r in result.rows}):
        rows = [r for r in result.rows if (r["cluster"] or "-") == cluster]
        rests = [float(r["rest_at"]) for r in rows if r["rest_at"] is not None]
        span = (max(rests) - result.load.first_sent) if rests else float("nan")
        total = [(float(r["rest_at"]) - sent[r["request_id"]]) * 1000 for r in rows
                 if r["rest_at"] is not None and r["request_id"] in sent]
        print(f"{cluster:<10} {len(rows):>9} {len(rests):>8} {len(rests) / span * 60 if rests else 0.0:>8.0f} "
              f"{pct(total, 50):>8.0f} {pct(total, 99):>8.0f}")


def soak_memory(sampler: Sampler, start: float, end: float, edge_s: float = 120) -> float:
    """PSS per component averaged over the soak's first and last ``edge_s`` seconds; prints the table and returns
    the app's growth in MB (first → last)."""
    window = sampler.window(start, end)
    first = [g for t, g in window if t <= start + edge_s]
    last = [g for t, g in window if t >= end - edge_s]
    if not first or not last:
        return float("nan")

    def mean(samples: list[dict[str, footprint.Totals]], name: str) -> float:
        return sum(g[name].pss_kb for g in samples if name in g) / len(samples) / 1024

    names = sorted({n for g in first + last for n in g}, key=lambda n: (n not in DEPLOYMENTS, n))
    print(f"\n## soak memory: mean PSS over its first and last {edge_s:.0f} s ({len(first)} and {len(last)} samples)")
    print(f"{'component':<28} {'first MB':>9} {'last MB':>9} {'growth MB':>10}")
    for name in names:
        a, b = mean(first, name), mean(last, name)
        print(f"{name:<28} {a:>9.0f} {b:>9.0f} {b - a:>+10.1f}")
    a, b = sum(mean(first, n) for n in names), sum(mean(last, n) for n in names)
    print(f"{'total':<28} {a:>9.0f} {b:>9.0f} {b - a:>+10.1f}")
    return b - a


def idle_pss(sampler: Sampler, start: float, end: float, title: str) -> float:
    """The last sample of the window, per component: processes, RSS, PSS, and CPU used over the window."""
    window = sampler.window(start, end)
    if not window:
        return float("nan")
    _, groups = window[-1]
    cpu = sampler.cpu_seconds(start, end)
    span = max(1e-9, end - start)
    print(f"\n## {title} (last of {len(window)} samples over {span:.0f} s)")
    print(f"{'component':<28} {'procs':>5} {'RSS MB':>8} {'PSS MB':>8} {'anon MB':>8} {'CPU %':>6}")
    for name, t in sorted(groups.items(), key=lambda kv: -kv[1].pss_kb):
        print(f"{name:<28} {t.processes:>5} {t.rss_kb / 1024:>8.0f} {t.pss_kb / 1024:>8.0f} {t.anon_kb / 1024:>8.0f} "
              f"{cpu.get(name, 0.0) / span * 100:>6.1f}")
    total = sum(t.pss_kb for t in groups.values()) / 1024
    print(f"{'total':<28} {sum(t.processes for t in groups.values()):>5} "
          f"{sum(t.rss_kb for t in groups.values()) / 1024:>8.0f} {total:>8.0f} "
          f"{sum(t.anon_kb for t in groups.values()) / 1024:>8.0f} {sum(cpu.values()) / span * 100:>6.1f}")
    return total


# --- where the time goes: py-spy on every replica during a phase ----------------------------------------------------

def profile(sampler: Sampler, workdir: Path, seconds: float, delay: float) -> threading.Thread:
    """After ``delay`` s, ``py-spy record`` each replica for ``seconds``: raw collapsed stacks of the thread holding the
    GIL (--gil), i.e. the Python CPU that bounds a replica's event loop."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))

    def record() -> None:
        time.sleep(delay)
        _, groups = sampler.samples[-1]
        jobs = []
        for name, totals in groups.items():
            if name not in DEPLOYMENTS:
                continue
            for pid in totals.pids:
                out = workdir / f"profile-{name}-{pid}.txt"
                jobs.append(subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                                              "--rate", str(PROFILE_HZ), "--format", "raw", "--gil", "--nonblocking",
                                              "--output", str(out)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for job in jobs:
            job.wait()

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    return thread


def summarize_profiles(workdir: Path, seconds: float, top: int = 8) -> None:
    """Per deployment: samples holding the GIL as a share of one core, and the busiest frames by self time and by
    inclusive time (kubernaut/ and the libraries it calls)."""
    by_dep: dict[str, list[tuple[list[str], int]]] = {}
    for path in sorted(workdir.glob("profile-*.txt")):
        name = path.name.split("-")[1]
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                by_dep.setdefault(name, []).append((stack.split(";"), int(count)))
    for name, stacks in sorted(by_dep.items(), key=lambda kv: -sum(c for _, c in kv[1])):
        total = sum(c for _, c in stacks)
        self_time: dict[str, int] = {}
        incl: dict[str, int] = {}
        for frames, count in stacks:
            self_time[frames[-1]] = self_time.get(frames[-1], 0) + count
            for frame in set(frames):
                if any(k in frame for k in ("kubernaut/", "asyncpg/", "pydantic", "kubernetes/", "ray/serve/")):
                    incl[frame] = incl.get(frame, 0) + count
        print(f"\n## profile {name}: {total} samples holding the GIL = {total / (seconds * PROFILE_HZ):.0%} of a core")
        for frame, count in sorted(self_time.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  self {count / max(1, total):>5.1%}  {frame}")
        for frame, count in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
            print(f"  incl {count / max(1, total):>5.1%}  {frame}")


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--incidents", type=int, default=2000, help="distinct incidents per phase")
    parser.add_argument("--namespaces", type=int, default=50)
    parser.add_argument("--rate", type=float, default=10.0, help="steady phase: alerts (= incidents) per second")
    parser.add_argument("--connections", type=int, default=50, help="concurrent webhooks at most")
    parser.add_argument("--phases", default="steady,burst")
    parser.add_argument("--idle-s", type=float, default=30, help="idle sampling before the load")
    parser.add_argument("--soak-s", type=float, default=0, help="idle sampling after the load")
    parser.add_argument("--soak-load-s", type=float, default=0,
                        help="a soak phase after the others: this long at --soak-rate (0: none)")
    parser.add_argument("--soak-rate", type=float, default=2.0, help="soak phase: alerts (= incidents) per second")
    parser.add_argument("--sample-s", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per phase to come to rest")
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG)
    parser.add_argument("--clusters", type=int, default=1,
                        help="a fleet of N clusters c0..cN-1 (all the test control plane); alerts spread over them")
    parser.add_argument("--keep-objects", action="store_true", help="leave the namespaces in the control plane")
    parser.add_argument("--profile-s", type=float, default=0,
                        help="py-spy every replica for this long, 5 s into each phase (0: no profile)")
    args = parser.parse_args()
    if not args.kubeconfig.exists():
        raise SystemExit(f"{args.kubeconfig} not found: start the test control plane (scripts/testenv.sh up)")
    phases = [p for p in args.phases.split(",") if p]
    if set(phases) - {"steady", "burst"}:
        raise SystemExit("--phases: steady and/or burst")
    if args.soak_load_s > 0:
        phases.append("soak")

    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    run = uuid.uuid4().hex[:6]
    namespaces = [f"kb-{run}-{i:02d}" for i in range(args.namespaces)]
    sizes = {phase: args.incidents for phase in phases}
    if "soak" in sizes:
        sizes["soak"] = int(args.soak_rate * args.soak_load_s)
    refs = {phase: [f"{namespaces[i % len(namespaces)]}/{PHASE_LETTER[phase]}{i:05d}" for i in range(sizes[phase])]
            for phase in phases}
    print(f"# pipeline benchmark {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {platform.node()} "
          f"({platform.machine()}, {os.cpu_count()} CPUs), load average {load_average()}; run {run}")
    created_s = create_workloads(args.kubeconfig, namespaces, [r for p in phases for r in refs[p]])
    print(f"created {len(namespaces)} namespaces and {sum(len(v) for v in refs.values())} Deployments in "
          f"{created_s:.1f} s")

    workdir = Path(tempfile.mkdtemp(prefix="kubernaut-pipeline-"))
    pg_dir = workdir / "pg"
    admin_dsn = ensure_embedded_server(pg_dir)
    results: list[tuple[PhaseResult, dict[str, int]]] = []
    soak_growth = float("nan")
    try:
        dsn = create_database(admin_dsn)
        # --clusters N: N fleet entries reaching the same control plane through its kubeconfig, c0 the home one.
        fleet = {"fleet": {"default_cluster": "c0", "clusters": [
            {"name": f"c{i}", "kubeconfig": str(args.kubeconfig)} for i in range(args.clusters)]}} \
            if args.clusters > 1 else None
        with kubernaut_serve(dsn, workdir, fleet, kubeconfig=args.kubeconfig, unthrottled=False) as url:
            sampler = Sampler(int((workdir / "serve.pid").read_text()), pg_dir, args.sample_s)
            wait_for_replicas(sampler, 180)
            sampler.start()
            sampler.take()  # the CPU baseline of the idle window
            idle_start = time.time()
            time.sleep(args.idle_s)
            idle_end = time.time()
            idle_mb = idle_pss(sampler, idle_start, idle_end, f"idle, load average {load_average()}")
            for phase in phases:
                (workdir / phase).mkdir()
                size_before = asyncio.run(database_bytes(dsn))
                print(f"\n{phase}: start, load average {load_average()}", flush=True)
                started = time.time()
                groups = (steady_groups(refs[phase]) if phase in ("steady", "soak") else
                          [(ns, [r for r in refs[phase] if r.startswith(ns + "/")]) for ns in namespaces])
                rate = {"steady": args.rate, "soak": args.soak_rate}.get(phase)
                profiler = profile(sampler, workdir / phase, args.profile_s, 5) if args.profile_s else None
                load = asyncio.run(send(url, run, phase, groups, rate, args.connections, args.clusters))
                rows = asyncio.run(settle(dsn, run, phase, len(refs[phase]), args.timeout))
                ended = time.time()
                growth = asyncio.run(database_bytes(dsn)) - size_before
                result = PhaseResult(phase, load, rows, started, ended, growth)
                missing = lost_alerts(dsn, run, load.receipts)
                lost = print_phase(result, sampler, missing, len(refs[phase]))
                if args.clusters > 1:
                    print_clusters(result)
                if profiler is not None:
                    profiler.join()
                    summarize_profiles(workdir / phase, args.profile_s)
                if phase == "soak":
                    soak_growth = soak_memory(sampler, load.first_sent, load.last_sent)
                print(f"{phase}: end, load average {load_average()}", flush=True)
                results.append((result, lost))
            soak_start = time.time()
            time.sleep(args.soak_s)
            sampler.take()
            after_mb = idle_pss(sampler, soak_start, time.time(), f"after the load (+{args.soak_s:.0f} s idle)")
            sampler.stopped.set()
        left = (workdir / "left_behind.txt").read_text().splitlines()
        print(f"\nprocesses of the app left running after its stop: {len(left)}" + "".join(f"\n  {x}" for x in left))
    finally:
        stop_embedded_server(pg_dir)
        if not args.keep_objects:
            delete_namespaces(args.kubeconfig, namespaces)

    steady = next((r for r, _ in results if r.name == "steady"), None)
    burst = next((r for r, _ in results if r.name == "burst"), None)
    soak = next((r for r, _ in results if r.name == "soak"), None)
    lost_total = sum(sum(lost.values()) for _, lost in results)
    headline = steady or burst
    total_ms = headline.stages()["sent → at rest"] if headline else []
    fields = [f"incidents={sum(len(v) for v in refs.values())}"]
    if steady:
        fields.append(f"per_min={steady.per_min():.0f}")
    fields += [f"p50_ms={pct(total_ms, 50):.0f}", f"p99_ms={pct(total_ms, 99):.0f}", f"lost={lost_total}"]
    if burst:
        fields += [f"burst_per_min={burst.per_min():.0f}", f"burst_s={burst.span_s():.1f}"]
    growth = sum(r.db_growth for r, _ in results) / 1024 / max(1, sum(len(v) for v in refs.values())) * 1000
    if soak:
        soak_ms = soak.stages()["sent → at rest"]
        fields += [f"soak_per_min={soak.per_min():.0f}", f"soak_p99_ms={pct(soak_ms, 99):.0f}",
                   f"soak_pss_growth_mb={soak_growth:.0f}"]
    fields += [f"idle_pss_mb={idle_mb:.0f}", f"after_pss_mb={after_mb:.0f}", f"db_kb_per_1000={growth:.0f}",
               f"left_behind={len(left)}", f"load_avg={os.getloadavg()[0]:.1f}"]
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
