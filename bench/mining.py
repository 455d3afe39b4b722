"""Pattern-mining benchmark: a synthetic history of N executed actions, mined the way the periodic job does.

History (seeded, generated in SQL): incidents on W workloads over 30 days, their alerts plus unrelated
later alerts, N live actions with one final assessment each (verdict odds depend on signature x action).
Then complete mining rounds run (:func:`kubernaut.intelligence.mining.mining_round`, the job's code,
batches of ``mining_batch``) until nothing is left: statistics folded into ``action_stats``, then
recurring incidents, ineffective chains, oscillation and harmful side effects.

Baselines in the same run:
* a plain ``GROUP BY`` over the N assessments (a read with no writes: the floor for the statistics);
* ingest while mining: single-row alert commits (the gateway's write) every 20 ms, p99 latency when idle
  vs while the miner runs — mining must slow ingest at most by CPU sharing, never block it.

    .venv/bin/python bench/mining.py [--records 1000000] [--workloads 20000]
Last line: ``RESULT records=<n> seconds=<n>`` (all mining rounds, wall clock).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from kubernaut.config.settings import IntelligenceConfig, StorageConfig
from kubernaut.intelligence.mining import mine_patterns, mine_stats

HISTORY_SQL = [
    # Workload-level incidents: ~0.3 per action, over 30 days; signature = alert x kind.
    """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                              status, severity, environment, first_seen, last_seen, created_at)
       SELECT 'ns' || (w % 200) || ':' || k.kind || ':w' || w, k.kind, 'w' || w, 'ns' || (w % 200), 'bench',
              ARRAY[(ARRAY['KubePodOOMKilled', 'KubePodCrashLooping', 'KubeDeploymentReplicasMismatch',
                           'AppErrorRateHigh', 'AppHighLatency', 'KubeContainerCPUThrottling', 'KubePodNotReady',
                           'KubeHpaMaxedOut'])[1 + floor(random() * 8)::int]],
              'resolved', 'critical', 'production', t, t, t
       FROM (SELECT g, (g::bigint * 7919) % $2 AS w,
                    now() - interval '30 days' + (g::float8 / $1) * interval '30 days' AS t
             FROM generate_series(1, $1) g) s
       CROSS JOIN LATERAL (SELECT (ARRAY['Deployment', 'Deployment', 'Deployment', 'StatefulSet',
                                         'DaemonSet'])[1 + w % 5] AS kind) k""",
    # The first alert of every incident, and unrelated later alerts (half as many) in the same namespaces.
    """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, namespace, labels, starts_at, dedup_key,
                           incident_id, received_at)
       SELECT 'bench', 'fp' || i.id, i.signals[1], 'firing', i.target_namespace, '{}'::jsonb, i.first_seen,
              'd' || i.id, i.id, i.first_seen FROM incidents i""",
    """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, namespace, labels, starts_at, dedup_key,
                           received_at)
       SELECT 'bench', 'x' || g, 'Side' || (g % 13), 'firing', 'ns' || (g % 200), '{}'::jsonb,
              now() - interval '30 days' + random() * interval '30 days', 'x' || g, now()
       FROM generate_series(1, $1 / 2) g""",
    "UPDATE alerts SET received_at = starts_at WHERE dedup_key LIKE 'x%'",
]

ACTIONS_SQL = """
INSERT INTO actions (incident_id, action, target, parameters, idempotency_key, dry_run, status, created_at,
                     finished_at)
SELECT i.id, a.action, jsonb_build_object('kind', i.target_kind, 'name', i.target_name,
                                          'namespace', i.target_namespace),
       CASE WHEN a.action = 'scale_deployment' THEN jsonb_build_object('replicas', 1 + (g % 4)) ELSE '{}'::jsonb END,
       'bench-' || g, false, 'succeeded', i.first_seen + (g % 50) * interval '1 minute',
       i.first_seen + (g % 50) * interval '1 minute' + interval '5 seconds'
FROM (SELECT g, 1 + (g::bigint * 104729) % $2 AS incident FROM generate_series(1, $1) g) s
JOIN incidents i ON i.id = s.incident
CROSS JOIN LATERAL (SELECT (ARRAY['rollout_restart', 'increase_memory_limits', 'scale_deployment',
                                  'rollback_deployment', 'delete_pod', 'increase_cpu_limits', 'update_hpa',
                                  'relax_pdb'])[1 + floor(random() * 8 + 0 * g)::int] AS action) a
"""

ASSESSMENTS_SQL = """
INSERT INTO assessments (action_id, incident_id, action, target, target_key, target_kind, signature, alertname,
                         status, verdict, score, action_at, due_at, expires_at, assessed_at, recovered_at)
SELECT x.id, x.incident_id, x.action, x.target,
       (x.target->>'namespace') || ':' || (x.target->>'kind') || ':' || (x.target->>'name'), i.target_kind,
       i.signals[1] || ':' || i.target_kind, i.signals[1], 'done', v.verdict,
       CASE v.verdict WHEN 'effective' THEN 0.9 WHEN 'ineffective' THEN 0.1 ELSE 0.6 END,
       x.finished_at, x.finished_at + interval '5 minutes', x.finished_at + interval '35 minutes',
       x.finished_at + interval '5 minutes',
       CASE WHEN v.verdict = 'effective' THEN x.finished_at + interval '5 minutes' END
FROM actions x JOIN incidents i ON i.id = x.incident_id
CROSS JOIN LATERAL (
    -- Odds per (signature, action): memory fixes OOMs, restarts mostly do not, and so on.
    SELECT CASE WHEN r < p THEN 'effective' WHEN r < p + 0.1 THEN 'inconclusive' ELSE 'ineffective' END AS verdict
    FROM (SELECT random() + 0 * x.id AS r,
                 CASE WHEN i.signals[1] = 'KubePodOOMKilled' AND x.action = 'increase_memory_limits' THEN 0.85
                      WHEN i.signals[1] = 'KubePodOOMKilled' AND x.action = 'rollout_restart' THEN 0.1
                      WHEN x.action = 'rollback_deployment' THEN 0.6 ELSE 0.45 END AS p) o
) v
"""


async def ingest_probe(pool, stop: asyncio.Event, latencies: list[float]) -> None:  # type: ignore[no-untyped-def]
    """The gateway's durable write, one alert per commit, every 20 ms."""
    n = 0
    while not stop.is_set():
        n += 1
        t = time.perf_counter()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, namespace, labels, starts_at,
                                       dedup_key) VALUES ('probe', 'p', 'Probe', 'firing', 'probe', '{}'::jsonb, now(),
                                       $1)""", f"probe-{time.time_ns()}-{n}")
        latencies.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


async def run(args: argparse.Namespace) -> None:
    from kubernaut.storage.database import Database
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    data_dir = Path(tempfile.mkdtemp(prefix="kubernaut-bench-mining-"))
    dsn = ensure_embedded_server(data_dir)
    db = await Database.connect(StorageConfig(dsn=dsn, pool_max_size=6, command_timeout_s=3600))
    pool = db.pool
    cfg = IntelligenceConfig(mining_round_budget_s=args.round_budget)
    try:
        t0 = time.perf_counter()
        incidents = int(args.records * 0.3)
        async with pool.acquire() as conn:
            await conn.execute("SELECT setseed(0.42)")
            await conn.execute(HISTORY_SQL[0], incidents, args.workloads)
            for sql in HISTORY_SQL[1:]:
                await (conn.execute(sql, incidents) if "$1" in sql else conn.execute(sql))
            await conn.execute(ACTIONS_SQL, args.records, incidents)
            await conn.execute(ASSESSMENTS_SQL)
            await conn.execute("INSERT INTO mining_inbox SELECT id FROM assessments")
            await conn.execute("VACUUM ANALYZE")
            counts = await conn.fetchrow(
                """SELECT (SELECT count(*) FROM incidents) AS incidents, (SELECT count(*) FROM alerts) AS alerts,
                          (SELECT count(*) FROM actions) AS actions, (SELECT count(*) FROM assessments) AS assessed""")
        print(f"history generated in {time.perf_counter() - t0:.1f}s: {dict(counts)}")

        # Baseline 1: the plain aggregate (read only).
        t0 = time.perf_counter()
        await pool.fetch("""SELECT signature, action, count(*), count(*) FILTER (WHERE verdict = 'effective'),
                                   avg(score) FROM assessments GROUP BY 1, 2""")
        plain_s = time.perf_counter() - t0

        # Baseline 2: ingest latency while idle.
        idle: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.create_task(ingest_probe(pool, stop, idle))
        await asyncio.sleep(args.probe_s)
        stop.set()
        await probe

        # Mining, with ingest running alongside.
        busy: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.create_task(ingest_probe(pool, stop, busy))
        t0 = time.perf_counter()
        rounds, folded = 0, 0
        stats_s = 0.0
        while True:
            rounds += 1
            t = time.perf_counter()
            done, more = await mine_stats(pool, cfg.mining_batch, cfg.mining_round_budget_s)
            stats_s += time.perf_counter() - t
            folded += done
            if not more:
                break
        phases: dict[str, float] = {}
        t = time.perf_counter()
        pattern_counts = await mine_patterns(pool, cfg)
        phases["patterns (all four)"] = time.perf_counter() - t
        total_s = time.perf_counter() - t0
        stop.set()
        await probe

        # Each pattern query alone, for the table (not part of the total: mine_patterns ran them above).
        from kubernaut.intelligence import mining
        from kubernaut.storage import patterns as store

        opposites = [f"{a}>{b}" for a, b in mining.OPPOSITES] + [f"{b}>{a}" for a, b in mining.OPPOSITES]
        singles = {
            "recurring": ("recurring", store.RECURRING_SQL, (cfg.pattern_window_s, cfg.recurring_min, 0)),
            "ineffective chains": ("ineffective_chain", store.CHAINS_SQL, (cfg.pattern_window_s, cfg.chain_length,
                                                                            0)),
            "oscillation": ("oscillation", store.OSCILLATION_SQL, (cfg.pattern_window_s, opposites,
                                                                    cfg.oscillation_window_s, 0)),
            "harmful side effects": ("harmful", store.HARMFUL_SQL, (cfg.pattern_window_s, cfg.harmful_window_s,
                                                                     cfg.harmful_min_cases, 0.3, 0)),
        }
        single_s: dict[str, float] = {}
        async with pool.acquire() as conn:
            for name, (kind, sql, params) in singles.items():
                transaction = conn.transaction()
                await transaction.start()
                await conn.execute("DELETE FROM patterns WHERE kind = $1", kind)
                await conn.execute(f"SET LOCAL work_mem = '{store.WORK_MEM}'")
                t = time.perf_counter()
                await conn.execute(sql, *params)
                single_s[name] = time.perf_counter() - t
                await transaction.rollback()  # measured only: the swap above already stored the patterns

        stats = await pool.fetchrow("SELECT count(*) AS keys, sum(executions) AS executions FROM action_stats")
        assert stats["executions"] == counts["assessed"] == folded, (stats, counts, folded)
        top = await pool.fetch(
            """SELECT signature, action, effective, ineffective, executions FROM action_stats
               WHERE signature = 'KubePodOOMKilled:Deployment' ORDER BY effective::float8 / executions DESC""")

        print()
        print(f"{'phase':<34}{'seconds':>10}{'rows/s':>12}")
        print(f"{'baseline: plain GROUP BY (read)':<34}{plain_s:>10.2f}{counts['assessed'] / plain_s:>12,.0f}")
        print(f"{'statistics fold (' + str(rounds) + ' rounds)':<34}{stats_s:>10.2f}{folded / stats_s:>12,.0f}")
        for name, seconds in single_s.items():
            print(f"{'  ' + name:<34}{seconds:>10.2f}")
        print(f"{'patterns (all four, one swap each)':<34}{phases['patterns (all four)']:>10.2f}")
        print(f"{'total mining':<34}{total_s:>10.2f}{folded / total_s:>12,.0f}")
        print(f"ratio statistics fold / plain aggregate: {stats_s / plain_s:.1f}x (the fold also writes and marks "
              "every row)")
        print(f"patterns found: {pattern_counts}; action_stats keys: {stats['keys']}")
        print(f"ingest commit while idle: p50 {statistics.median(idle):.2f} ms, p99 {pct(idle, 99):.2f} ms, "
              f"max {max(idle):.2f} ms ({len(idle)} commits)")
        print(f"ingest commit while mining: p50 {statistics.median(busy):.2f} ms, p99 {pct(busy, 99):.2f} ms, "
              f"max {max(busy):.2f} ms ({len(busy)} commits); p99 ratio {pct(busy, 99) / pct(idle, 99):.1f}x")
        print("OOM evidence: " + "; ".join(f"{r['action']} {r['effective']}/{r['executions']}" for r in top[:3]))
        print(f"machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} date: "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, batch={cfg.mining_batch}")
        print(f"RESULT records={folded} seconds={total_s:.1f}")
    finally:
        await db.close()
        stop_embedded_server(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workloads", type=int, default=20_000)
    parser.add_argument("--round-budget", type=float, default=20.0, help="seconds per mining round")
    parser.add_argument("--probe-s", type=float, default=5.0, help="idle ingest probe duration")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
