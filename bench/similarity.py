"""Similar-incident search benchmark: N incident embeddings in pgvector, HNSW vs exact search.

Builds N synthetic but structured incident descriptions (alert names, kinds, symptoms, traits,
severity, environment; seeded, so every run is the same), embeds them with the default provider,
loads them into ``incident_embeddings`` of an embedded PostgreSQL+pgvector (the app's own schema),
builds the HNSW index, then runs held-out queries through the production query
(:func:`kubernaut.storage.incident_embeddings.nearest`) at several ``hnsw.ef_search`` values.

* recall@10: share of the returned 10 that are among the true 10 nearest (exact cosine in numpy;
  tie-aware: a result as close as the true 10th counts);
* latency: client-side per query (asyncpg round trip included), sequential;
* baseline (same run): exact search in PostgreSQL (sequential scan, index disabled); ratio = speed-up.

The last line reports the shipped setting (``IntelligenceConfig.hnsw_ef_search``):
``RESULT n=<n> p99_ms=<n> recall_at_10=<x>``.

    .venv/bin/python bench/similarity.py [--n 100000] [--queries 1000] [--m 16] [--ef-construction 128]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import asyncpg
import numpy as np

from kubernaut.config.settings import IntelligenceConfig, StorageConfig
from kubernaut.intelligence.embeddings import DIMENSIONS, HashingEmbedder, hashed_vector
from kubernaut.intelligence.similarity import describe
from kubernaut.storage.incident_embeddings import nearest

SIGNALS = [f"{prefix}{suffix}" for prefix in ("KubePod", "KubeContainer", "KubeDeployment", "KubeStatefulSet",
                                              "KubeDaemonSet", "KubeJob", "KubeNode", "KubeHpa", "App", "Service")
           for suffix in ("OOMKilled", "CrashLooping", "NotReady", "ImagePullBackOff", "HighLatency", "ErrorRate",
                          "ReplicasMismatch", "CPUThrottling")]
KINDS = ["Deployment", "StatefulSet", "DaemonSet", "Pod", "Node", "Job", "CronJob", "PersistentVolumeClaim",
         "HorizontalPodAutoscaler", "Service"]
SYMPTOMS = ["pods.oom_killed", "pods.crashlooping", "pods.image_pull_error", "pods.config_error", "pods.unschedulable",
            "pods.restarts:some", "pods.restarts:many", "pods.not_ready:some", "pods.not_ready:many",
            "workload.recent_rollout", "workload.image_changed", "workload.rollout_stalled", "workload.paused",
            "workload.has_previous_revision", "hpa.at_max", "node.not_ready", "node.memory_pressure",
            "node.disk_pressure", "pvc.near_full", "quota.exhausted", "network.endpoints_missing", "job.failed"]
TRAITS = ["gitops", "helm", "stateful", "hpa", "pdb", "pvc", "single_replica"]
SEVERITIES = ["critical", "high", "warning", "info"]
ENVIRONMENTS = ["production", "staging", "development", "unknown"]


def synthetic(rng: random.Random) -> str:
    """Incidents cluster the way real ones do: an alert family implies typical symptoms, plus noise."""
    signals = [rng.choice(SIGNALS)] + ([rng.choice(SIGNALS)] if rng.random() < 0.3 else [])
    symptoms = rng.sample(SYMPTOMS, rng.randint(0, 4))
    facts: dict[str, object] = {}
    for s in symptoms:
        key, _, level = s.partition(":")
        facts[key] = {"some": 1, "many": 5}[level] if level else True
    for t in rng.sample(TRAITS, rng.randint(0, 3)):
        facts[f"traits.{t}"] = True
    return describe(signals, rng.choice(KINDS), rng.choice(SEVERITIES), rng.choice(ENVIRONMENTS), facts)


# The baseline: the same result columns, ordered by the full-precision distance (no index on it: exact).
EXACT_SQL = """
SELECT e.incident_id, 1 - (e.embedding <=> $1) AS similarity, e.description, e.action, e.verdict, e.score
FROM incident_embeddings e JOIN incidents i ON i.id = e.incident_id
WHERE e.provider = $2 ORDER BY e.embedding <=> $1 LIMIT $3
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    from kubernaut.storage.database import Database
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="kubernaut-bench-sim-"))
    dsn = ensure_embedded_server(data_dir)
    db = await Database.connect(StorageConfig(dsn=dsn, pool_max_size=4, command_timeout_s=3600))
    pool = db.pool
    provider = HashingEmbedder.name
    try:
        t0 = time.perf_counter()
        texts = [synthetic(rng) for _ in range(args.n)]
        vectors = np.stack([hashed_vector(t) for t in texts])
        embed_s = time.perf_counter() - t0
        print(f"embedded {args.n} descriptions in {embed_s:.1f}s ({len(set(texts))} distinct)")

        t0 = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.execute("DROP INDEX incident_embeddings_hnsw")
            await conn.execute(
                """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source,
                                          signals, status)
                   SELECT 'bench:' || g, 'Deployment', 'w' || g, 'bench', 'bench', ARRAY['Bench'], 'resolved'
                   FROM generate_series(1, $1) g""", args.n)
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM incidents ORDER BY id")]
            records = [(ids[i], provider, texts[i], vectors[i], "Bench:Deployment", f"bench:Deployment:w{i}",
                        "Deployment", "rollout_restart", "effective", 0.9) for i in range(args.n)]
            await conn.copy_records_to_table(
                "incident_embeddings", records=records,
                columns=["incident_id", "provider", "description", "embedding", "signature", "target_key",
                         "target_kind", "action", "verdict", "score"])
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            await conn.execute("SET maintenance_work_mem = '1GB'")
            await conn.execute("SET max_parallel_maintenance_workers = 1")
            await conn.execute(
                "CREATE INDEX incident_embeddings_hnsw ON incident_embeddings USING hnsw "
                "((embedding::halfvec(384)) halfvec_cosine_ops)"
                f" WITH (m = {int(args.m)}, ef_construction = {int(args.ef_construction)})")
            build_s = time.perf_counter() - t0
            await conn.execute("ANALYZE incident_embeddings")
            await conn.execute("ANALYZE incidents")
        print(f"loaded in {load_s:.1f}s, HNSW (m={args.m}, ef_construction={args.ef_construction}) built in "
              f"{build_s:.1f}s")

        queries = [synthetic(rng) for _ in range(args.queries)]
        qvecs = np.stack([hashed_vector(q) for q in queries])
        k = 10
        # Exact truth in numpy (cosine = dot product of unit vectors); tie-aware threshold per query.
        sims = qvecs @ vectors.T
        kth = -np.partition(-sims, k - 1, axis=1)[:, k - 1]

        def recall(found_ids: list[int], qi: int) -> float:
            positions = [ids_index[i] for i in found_ids]
            return sum(1 for p in positions if sims[qi, p] >= kth[qi] - 1e-5) / k

        ids_index = {incident_id: pos for pos, incident_id in enumerate(ids)}

        async def one(conn: asyncpg.Connection, qi: int, ef: int | None) -> tuple[float, float]:
            t = time.perf_counter()
            if ef is None:
                found_ids = [r["incident_id"] for r in await conn.fetch(EXACT_SQL, qvecs[qi], provider, k)]
            else:
                found_ids = [n.incident_id for n in await nearest(conn, qvecs[qi], provider, k, ef)]
            return (time.perf_counter() - t) * 1000, recall(found_ids, qi)

        rows = []
        async with pool.acquire() as conn:
            for qi in range(50):  # warm the cache
                await one(conn, qi, args.ef_search[0])
            # Interleaved: every ef_search value answers the same query back to back (and the exact baseline
            # every few queries), so bursts of load from other processes hit all settings alike.
            exact: list[tuple[float, float]] = []
            every = max(1, args.queries // max(1, args.exact_queries))
            results: dict[int, tuple[list[float], list[float]]] = {ef: ([], []) for ef in args.ef_search}
            for qi in range(args.queries):
                if qi % every == 0 and len(exact) < args.exact_queries:
                    exact.append(await one(conn, qi, None))
                for ef in args.ef_search:
                    latency, found_recall = await one(conn, qi, ef)
                    results[ef][0].append(latency)
                    results[ef][1].append(found_recall)
        rows.append(("exact (seq scan)", "-", [e[0] for e in exact], [e[1] for e in exact]))
        for ef, (lat, rec) in results.items():
            rows.append(("hnsw", str(ef), lat, rec))
        exact_lat = rows[0][2]

        exact_p99 = pct(exact_lat, 99)
        print()
        print(f"{'search':<18}{'ef_search':>10}{'queries':>9}{'p50 ms':>9}{'p99 ms':>9}{'recall@10':>11}"
              f"{'speed-up p99':>14}")
        for name, ef, lat, rec in rows:
            print(f"{name:<18}{ef:>10}{len(lat):>9}{statistics.median(lat):>9.2f}{pct(lat, 99):>9.2f}"
                  f"{statistics.fmean(rec):>11.4f}{exact_p99 / pct(lat, 99):>13.1f}x")
        shipped = IntelligenceConfig().hnsw_ef_search
        lat, rec = results.get(shipped) or next(iter(results.values()))
        print()
        print(f"machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} date: "
              f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, dims={DIMENSIONS}, shipped ef_search={shipped}")
        print(f"RESULT n={args.n} p99_ms={pct(lat, 99):.2f} recall_at_10={statistics.fmean(rec):.4f}")
    finally:
        await db.close()
        stop_embedded_server(data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--exact-queries", type=int, default=100)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 64, 100, 200])
    parser.add_argument("--seed", type=int, default=7)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
