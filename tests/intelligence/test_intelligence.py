"""Intelligence against real PostgreSQL+pgvector: statistics mining (resumable, exact, concurrent-safe),
patterns (recurring, chains, oscillation, harmful side effects), similar incidents (right neighbours
through the HNSW index), and the three feedback functions."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from kubernaut.config.settings import IntelligenceConfig
from kubernaut.intelligence import feedback, report
from kubernaut.intelligence.embeddings import HashingEmbedder
from kubernaut.intelligence.mining import mine_patterns, mine_stats, mining_round
from kubernaut.intelligence.similarity import nearest_incidents, upsert_incident
from tests.support.incident_history import NOW, OOM_FACTS, connect, seed_action, seed_assessment, seed_incident

pytestmark = pytest.mark.integration


# --- history builders (also used by the effectiveness tests) ----------------------------------------


CRASH_FACTS = {"pods.crashlooping": True, "pods.config_error": True, "pods.restarts": 4}
PULL_FACTS = {"pods.image_pull_error": True, "workload.recent_rollout": True, "workload.image_changed": True}


# --- statistics ------------------------------------------------------------------------------------

async def test_mining_folds_outcomes_once_and_evidence_is_exact(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    try:
        signature = "KubePodOOMKilled:Deployment"
        for i in range(3):
            incident = await seed_incident(pool, signals=["KubePodOOMKilled"], name=f"api-{i}", facts=OOM_FACTS)
            await seed_assessment(pool, await seed_action(pool, incident, "rollout_restart"), "ineffective")
        for i in range(4):
            incident = await seed_incident(pool, signals=["KubePodOOMKilled"], name=f"db-{i}", facts=OOM_FACTS)
            await seed_assessment(pool, await seed_action(pool, incident, "increase_memory_limits"), "effective",
                                  recovered_after_s=120)
        incident = await seed_incident(pool, signals=["KubePodOOMKilled"], name="x", facts=OOM_FACTS)
        await seed_assessment(pool, await seed_action(pool, incident, "increase_memory_limits"), "inconclusive")

        before = await feedback.evidence_for(pool, signature, "increase_memory_limits")  # all still in the inbox (tail)
        assert (before.successes, before.failures, before.inconclusive, before.cases) == (4, 0, 1, 4)

        folded, more = await mine_stats(pool, batch=3, budget_s=60)  # several batches
        assert (folded, more) == (8, False)
        assert await mine_stats(pool, batch=3, budget_s=60) == (0, False)  # nothing counted twice

        after = await feedback.evidence_for(pool, signature, "increase_memory_limits")
        assert after.model_dump(exclude={"explanation"}) == before.model_dump(exclude={"explanation"})
        assert after.lower_bound == pytest.approx(0.51, abs=0.01)  # Wilson, 4/4
        assert after.mttr_s == pytest.approx(3600 + 120, abs=1)  # first alert an hour before the action
        restart = await feedback.evidence_for(pool, signature, "rollout_restart")
        assert (restart.successes, restart.failures, restart.lower_bound) == (0, 3, 0.0)

        # A new outcome counts at once (tail), before the next mining round folds it in.
        incident = await seed_incident(pool, signals=["KubePodOOMKilled"], name="late", facts=OOM_FACTS)
        await seed_assessment(pool, await seed_action(pool, incident, "rollout_restart"), "ineffective")
        assert (await feedback.evidence_for(pool, signature, "rollout_restart")).failures == 4

        ranked = await feedback.ranking(pool, signature, ["rollout_restart", "delete_pod", "increase_memory_limits"])
        assert [r.action for r in ranked] == ["increase_memory_limits", "delete_pod", "rollout_restart"]
        assert ranked[0].value > 0.5 > ranked[2].value and ranked[1].value == 0.5  # untried stays neutral

        rows = {r["action"]: r for r in await report.action_stats(pool)}
        assert rows["increase_memory_limits"]["lower_bound"] == pytest.approx(0.51, abs=0.01)
        assert rows["rollout_restart"]["ineffective"] == 4 and rows["rollout_restart"]["success_rate"] == 0
        assert rows["increase_memory_limits"]["chosen_30d"] == 5
    finally:
        await db.close()


async def test_concurrent_miners_count_every_outcome_exactly_once(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    try:
        incident = await seed_incident(pool, signals=["KubeDeploymentReplicasMismatch"])
        for i in range(60):
            await seed_assessment(pool, await seed_action(pool, incident, "scale_deployment",
                                                          parameters={"replicas": 2 + i % 2}),
                                  "effective" if i % 3 else "ineffective")
        results = await asyncio.gather(*(mine_stats(pool, batch=7, budget_s=60) for _ in range(4)))
        leftover, _ = await mine_stats(pool, batch=7, budget_s=60)
        assert sum(r[0] for r in results) + leftover == 60
        row = await pool.fetchrow("SELECT * FROM action_stats")
        assert (row["executions"], row["effective"], row["ineffective"]) == (60, 40, 20)
    finally:
        await db.close()


async def test_round_yields_when_over_budget_and_resumes(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    try:
        incident = await seed_incident(pool, signals=["KubePodCrashLooping"])
        for _ in range(30):
            await seed_assessment(pool, await seed_action(pool, incident, "rollout_restart"), "effective")
        cfg = IntelligenceConfig(mining_batch=100, mining_round_budget_s=0.000001)
        await pool.execute("INSERT INTO mining_inbox SELECT id FROM assessments ON CONFLICT DO NOTHING")
        # batch 100 > 30 rows: done in one batch; with a batch of 10 the budget forces a yield.
        first = await mining_round(pool, cfg.model_copy(update={"mining_batch": 100}), None)
        assert first["stats_rows"] == 30 and not first["more"]
        await pool.execute("DELETE FROM action_stats")
        await pool.execute("INSERT INTO mining_inbox SELECT id FROM assessments ON CONFLICT DO NOTHING")
        small = cfg.model_copy(update={"mining_batch": 10})
        rounds = []
        while True:
            rounds.append(await mining_round(pool, small, None))
            if not rounds[-1]["more"]:
                break
        assert len(rounds) >= 3 and sum(r["stats_rows"] for r in rounds) == 30
        assert "patterns" in rounds[-1] and "patterns" not in rounds[0]
        assert await pool.fetchval("SELECT executions FROM action_stats") == 30
    finally:
        await db.close()


# --- patterns --------------------------------------------------------------------------------------

async def test_patterns_recurring_chains_oscillation_harmful(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    try:
        t0 = NOW - timedelta(days=1)
        # Recurring: the same workload, the same signature, four times.
        recurring = []
        for i in range(4):
            recurring.append(await seed_incident(pool, signals=["KubePodOOMKilled"], name="cart", facts=OOM_FACTS,
                                                 first_seen=t0 + timedelta(hours=i)))
        # Ineffective chain on cart: three ineffective remediations in a row (after one effective).
        verdicts = ["effective", "ineffective", "ineffective", "ineffective"]
        for i, (incident, verdict) in enumerate(zip(recurring, verdicts, strict=True)):
            await seed_assessment(pool, await seed_action(pool, incident, "rollout_restart",
                                                          at=t0 + timedelta(hours=i, minutes=5)), verdict)
        # Oscillation: cordon / uncordon of one node, back and forth within the hour.
        node_incident = await seed_incident(pool, signals=["KubeNodeNotReady"], kind="Node", name="n1", namespace="",
                                            first_seen=t0)
        await pool.execute("UPDATE incidents SET target_namespace = NULL WHERE id = $1", node_incident)
        for i, action in enumerate(["cordon_node", "uncordon_node", "cordon_node"]):
            await seed_assessment(pool, await seed_action(pool, node_incident, action,
                                                          at=t0 + timedelta(minutes=10 * i)), "inconclusive")
        # Harmful: every relax_pdb in "pay" is followed by a new alert within minutes; other actions are not.
        for i in range(6):
            at = t0 + timedelta(hours=2, minutes=20 * i)
            incident = await seed_incident(pool, signals=["KubePdbBlocking"], name=f"pay-{i}", namespace="pay",
                                           first_seen=at - timedelta(minutes=1))
            await seed_assessment(pool, await seed_action(pool, incident, "relax_pdb", at=at), "effective")
            await pool.execute(
                """INSERT INTO alerts (request_id, am_fingerprint, alertname, status, namespace, labels, starts_at,
                                       dedup_key, received_at) VALUES ('r', $1, 'KubePodDisruption', 'firing', 'pay',
                                       '{}'::jsonb, $2, $3, $2)""",
                f"new-{i}", at + timedelta(minutes=3), f"h-{i}")
        for i in range(6):
            at = t0 + timedelta(hours=5, minutes=20 * i)
            incident = await seed_incident(pool, signals=["KubeHpaMaxedOut"], name=f"q-{i}", namespace="queue",
                                           first_seen=at - timedelta(minutes=1))
            await seed_assessment(pool, await seed_action(pool, incident, "update_hpa", at=at), "effective")

        counts = await mine_patterns(pool, IntelligenceConfig())
        assert counts is not None
        found = await report.patterns_report(pool)
        rec = [p for p in found["recurring"] if p["detail"]["target"]["name"] == "cart"]
        assert rec and rec[0]["count"] == 4 and rec[0]["detail"]["signature"] == "KubePodOOMKilled:Deployment"
        chain = found["ineffective_chain"]
        assert len(chain) == 1 and chain[0]["count"] == 3 and chain[0]["detail"]["target_key"] == "shop:Deployment:cart"
        osc = {p["key"]: p["detail"] for p in found["oscillation"]}
        assert set(osc) == {"_cluster:Node:n1", "shop:Deployment:cart"}
        assert osc["_cluster:Node:n1"]["reversals"] == 2  # cordon → uncordon → cordon
        assert osc["shop:Deployment:cart"] == {**osc["shop:Deployment:cart"], "repeats": 3, "reversals": 0}  # hourly
        harmful = {p["key"]: p for p in found["harmful"]}
        assert set(harmful) == {"relax_pdb"} and harmful["relax_pdb"]["detail"]["rate"] == 1.0

        # Harmful actions are halved in the ranking, with the reason.
        ranked = await feedback.ranking(pool, "KubePdbBlocking:Deployment", ["relax_pdb", "notify_only"])
        assert ranked[0].action == "notify_only" and ranked[1].harmful and "harmful" in ranked[1].reason

        # Recomputing replaces, it does not accumulate.
        assert await mine_patterns(pool, IntelligenceConfig()) == counts
    finally:
        await db.close()


# --- similar incidents -----------------------------------------------------------------------------

async def test_similar_incidents_returns_right_neighbours_with_outcomes(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    embedder = HashingEmbedder()
    try:
        groups = {
            "oom": (["KubePodOOMKilled"], "Deployment", OOM_FACTS, "increase_memory_limits", "effective"),
            "crash": (["KubePodCrashLooping"], "Deployment", CRASH_FACTS, "rollback_deployment", "effective"),
            "pull": (["KubePodImagePullBackOff"], "Deployment", PULL_FACTS, "rollback_deployment", "effective"),
            "node": (["KubeNodeNotReady"], "Node", {}, "cordon_node", "inconclusive"),
            "pvc": (["KubePersistentVolumeFillingUp"], "PersistentVolumeClaim", {"pvc.near_full": True}, "expand_pvc",
                    "effective"),
            "sts-oom": (["KubePodOOMKilled"], "StatefulSet", {**OOM_FACTS, "traits.stateful": True},
                        "increase_memory_limits", "ineffective"),
        }
        members: dict[str, list[int]] = {}
        for group, (signals, kind, facts, action, verdict) in groups.items():
            for i in range(5):
                incident = await seed_incident(pool, signals=signals, kind=kind, name=f"{group}-{i}",
                                               namespace=f"ns-{i}", facts=facts)
                await seed_assessment(pool, await seed_action(pool, incident, action), verdict)
                assert await upsert_incident(pool, embedder, incident)
                members.setdefault(group, []).append(incident)
        # Noise: many unrelated incidents so the index has something to skip.
        for i in range(150):
            incident = await seed_incident(pool, signals=[f"Custom{i % 37}Alert"], kind="Service", name=f"svc-{i}",
                                           facts={"network.endpoints_missing": bool(i % 2)})
            await upsert_incident(pool, embedder, incident)

        query = await seed_incident(pool, signals=["KubePodOOMKilled"], name="new-api", namespace="other",
                                    facts=OOM_FACTS)
        found = await nearest_incidents(pool, embedder, incident_id=query, k=5)
        assert [f["incident_id"] for f in found] != []
        assert {f["incident_id"] for f in found} == set(members["oom"])
        assert all(f["action"] == "increase_memory_limits" and f["verdict"] == "effective" for f in found)
        assert found[0]["similarity"] > 0.95
        # The StatefulSet OOMs come next: same signal and symptoms, other kind.
        wider = await nearest_incidents(pool, embedder, incident_id=query, k=10)
        assert {f["incident_id"] for f in wider[5:]} == set(members["sts-oom"])

        by_text = await nearest_incidents(pool, embedder, description="signal: KubePodImagePullBackOff | kind: "
                                          "Deployment | symptoms: pods.image_pull_error", k=5)
        assert {f["incident_id"] for f in by_text} == set(members["pull"])

        # An outcome assessed later reaches the stored embedding without re-embedding the text.
        await pool.execute("UPDATE assessments SET verdict = 'ineffective' WHERE incident_id = $1",
                           members["oom"][0])
        await upsert_incident(pool, embedder, members["oom"][0])
        assert await pool.fetchval("SELECT verdict FROM incident_embeddings WHERE incident_id = $1",
                                   members["oom"][0]) == "ineffective"

        # The search goes through the HNSW index.
        async with pool.acquire() as conn:
            await conn.execute("SET enable_seqscan = off")  # 185 rows: the planner would rather scan them
            plan_rows = await conn.fetch(
                "EXPLAIN SELECT incident_id FROM incident_embeddings ORDER BY embedding::halfvec(384) <=> "
                "(SELECT embedding FROM incident_embeddings LIMIT 1)::halfvec(384) LIMIT 5")
        assert any("incident_embeddings_hnsw" in r[0] for r in plan_rows)
    finally:
        await db.close()


async def test_context_and_ranking_use_similar_incidents(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    pool = db.pool
    embedder = HashingEmbedder()
    try:
        # History elsewhere: OOMs on other workloads were fixed by memory, restarts did not help.
        for i in range(3):
            incident = await seed_incident(pool, signals=["ContainerOOMKilled"], name=f"other-{i}", facts=OOM_FACTS)
            await seed_assessment(pool, await seed_action(pool, incident, "increase_memory_limits"), "effective")
            await upsert_incident(pool, embedder, incident)
        # This workload: one earlier incident where a restart was ineffective.
        past = await seed_incident(pool, signals=["KubePodOOMKilled"], name="checkout", facts=OOM_FACTS,
                                   first_seen=NOW - timedelta(hours=3))
        await seed_assessment(pool, await seed_action(pool, past, "rollout_restart",
                                                      at=NOW - timedelta(hours=3)), "ineffective")
        await upsert_incident(pool, embedder, past)
        current = await seed_incident(pool, signals=["KubePodOOMKilled"], name="checkout", facts=OOM_FACTS,
                                      status="open")
        await upsert_incident(pool, embedder, current)

        context = await feedback.context_for(pool, current, embedder)
        assert context is not None and context.signature == "KubePodOOMKilled:Deployment"
        assert [h["action"] for h in context.target_history] == ["rollout_restart"]
        assert context.target_history[0]["verdict"] == "ineffective"
        worked = {w["action"]: w for w in context.what_worked}
        assert worked["increase_memory_limits"]["effective"] == 3
        assert any("rollout_restart" in line and "ineffective" in line for line in context.summary)

        # The signature "ContainerOOMKilled" is another one: only similar incidents carry its evidence over.
        ranked = await feedback.ranking(pool, "KubePodOOMKilled:Deployment",
                                        ["rollout_restart", "increase_memory_limits"], incident_id=current,
                                        min_similarity=0.5)
        assert [r.action for r in ranked] == ["increase_memory_limits", "rollout_restart"]
        assert ranked[0].similar_successes > 0 and ranked[1].evidence.failures == 1
    finally:
        await db.close()
