"""Learning keyed by cluster (issue 16): in a fleet the autonomy gate and the ranking count the incident's own
cluster's outcomes for a signature, the other clusters' record a prior of a few cases (real PostgreSQL, the
real feedback and autonomy queries). Cluster a's failures do not block cluster b's autonomy; they still lower
b's bound, and a cluster with no record of its own is not made autonomous by the others."""

from __future__ import annotations

import asyncpg
import pytest

from kubernaut.intelligence import feedback
from kubernaut.intelligence.embeddings import HashingEmbedder
from kubernaut.intelligence.models import ClusterScope
from kubernaut.intelligence.similarity import upsert_incident
from kubernaut.models.stats import wilson_lower_bound
from kubernaut.orchestration import autonomy
from tests.support.incident_history import OOM_FACTS, connect, seed_action, seed_assessment, seed_incident

pytestmark = pytest.mark.integration

SIGNATURE = "KubePodCrashLooping:Deployment"
ACTION = "increase_memory_limits"
HOME = "a"


def scope(cluster: str) -> ClusterScope:
    return ClusterScope(cluster=cluster, home=HOME, prior_cases=2.0)


async def assessed(pool: asyncpg.Pool, cluster: str | None, verdict: str, times: int) -> int:
    incident = 0
    for _ in range(times):
        incident = await seed_incident(pool, signals=["KubePodCrashLooping"], facts=OOM_FACTS)
        await pool.execute("UPDATE incidents SET cluster = $2 WHERE id = $1", incident, cluster)
        await seed_assessment(pool, await seed_action(pool, incident, ACTION), verdict)
    return incident


async def test_a_clusters_failures_do_not_block_another_clusters_autonomy(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        pool = db.pool
        await assessed(pool, None, "ineffective", 3)  # from before the fleet: the home cluster a's
        await assessed(pool, "a", "ineffective", 3)
        b_incident = await assessed(pool, "b", "effective", 10)

        # Counted fleet-wide (a single cluster's view), 10/16 is not autonomous.
        fleet_wide = await autonomy.measure(pool, SIGNATURE, ACTION, 5, 0.5)
        assert (fleet_wide.successes, fleet_wide.cases, fleet_wide.sufficient) == (10, 16, False)

        b = await autonomy.measure(pool, SIGNATURE, ACTION, 5, 0.5, scope("b"))
        assert (b.successes, b.cases, b.sufficient) == (10, 10, True), b.explanation
        # The fleet informs: a's 0/6 weighs as two failures, so b's bound is below its own record's.
        assert wilson_lower_bound(10, 12) == pytest.approx(b.lower_bound) and b.lower_bound < wilson_lower_bound(10, 10)
        assert "other clusters: 0/6 effective, weighed as 2.0 case(s)" in b.explanation

        a = await autonomy.measure(pool, SIGNATURE, ACTION, 5, 0.5, scope("a"))
        assert (a.successes, a.cases, a.sufficient) == (0, 6, False)  # the NULL rows are home's
        assert "other clusters: 10/10 effective" in a.explanation

        # A new cluster: the others' record (10/16) is a prior of two cases, never a record of its own.
        c_evidence = await feedback.evidence_for(pool, SIGNATURE, ACTION, scope("c"))
        assert (c_evidence.cases, c_evidence.fleet_cases) == (0, 2.0)
        assert c_evidence.fleet_successes == pytest.approx(2 * 10 / 16, abs=1e-3)
        assert c_evidence.lower_bound == pytest.approx(wilson_lower_bound(1.25, 2), abs=1e-3)
        c = await autonomy.measure(pool, SIGNATURE, ACTION, 1, 0.1, scope("c"))
        assert (c.cases, c.sufficient) == (0, False)

        # The ranking: b's own record ranks the action high, a's low; the fleet-wide value sits between.
        args = dict(priors={ACTION: 0.5}, prior_cases=1.0)
        ranked_b = (await feedback.ranking(pool, SIGNATURE, [ACTION], scope=scope("b"), **args))[0]
        ranked_a = (await feedback.ranking(pool, SIGNATURE, [ACTION], scope=scope("a"), **args))[0]
        ranked_all = (await feedback.ranking(pool, SIGNATURE, [ACTION], **args))[0]
        assert ranked_b.value == pytest.approx((10 + 0 + 0.5) / (10 + 2 + 1), abs=1e-3)
        assert ranked_a.value == pytest.approx((0 + 2 + 0.5) / (6 + 2 + 1), abs=1e-3)
        assert ranked_all.value == pytest.approx((10 + 0.5) / (16 + 1), abs=1e-3)

        # The intelligence deployment's scope comes from the incident; none on a single cluster.
        assert await feedback.scope_of(pool, b_incident, HOME, True, 2.0) == scope("b")
        assert await feedback.scope_of(pool, b_incident, HOME, False, 2.0) is None
    finally:
        await db.close()


async def test_before_any_assessment_the_workflow_outcomes_are_the_clusters_own(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        pool = db.pool
        for cluster, phase, times in (("a", "failed", 4), ("b", "completed", 3)):
            for _ in range(times):
                incident = await seed_incident(pool, signals=["KubePodCrashLooping"], facts=OOM_FACTS)
                await pool.execute("UPDATE incidents SET cluster = $2 WHERE id = $1", incident, cluster)
                action_id = await seed_action(pool, incident, ACTION)
                await pool.execute("UPDATE workflows SET phase = $2 WHERE id = (SELECT workflow_id FROM actions "
                                   "WHERE id = $1)", action_id, phase)
        b = await autonomy.measure(pool, SIGNATURE, ACTION, 3, 0.3, scope("b"))
        assert (b.successes, b.cases, b.sufficient) == (3, 3, True), b.explanation
        everyone = await autonomy.measure(pool, SIGNATURE, ACTION, 3, 0.3)
        assert (everyone.successes, everyone.cases, everyone.sufficient) == (3, 7, False)
    finally:
        await db.close()


async def test_similar_incidents_count_only_on_the_incidents_own_cluster(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    embedder = HashingEmbedder()
    try:
        pool = db.pool
        # Another signature (ContainerOOMKilled): only similar incidents carry it over. On a, the restart failed.
        for _ in range(3):
            incident = await seed_incident(pool, signals=["ContainerOOMKilled"], name="checkout", facts=OOM_FACTS)
            await pool.execute("UPDATE incidents SET cluster = 'a' WHERE id = $1", incident)
            await seed_assessment(pool, await seed_action(pool, incident, "rollout_restart"), "ineffective")
            await upsert_incident(pool, embedder, incident)
        current = await seed_incident(pool, signals=["KubePodOOMKilled"], name="checkout", facts=OOM_FACTS,
                                      status="open")
        await pool.execute("UPDATE incidents SET cluster = 'b' WHERE id = $1", current)
        await upsert_incident(pool, embedder, current)
        args = dict(incident_id=current, min_similarity=0.5, priors={"rollout_restart": 0.5}, prior_cases=1.0)

        fleet_wide = (await feedback.ranking(pool, "KubePodOOMKilled:Deployment", ["rollout_restart"], **args))[0]
        assert fleet_wide.similar_failures > 0  # a single cluster: every similar incident counts
        on_b = (await feedback.ranking(pool, "KubePodOOMKilled:Deployment", ["rollout_restart"], scope=scope("b"),
                                       **args))[0]
        assert (on_b.similar_failures, on_b.value) == (0, 0.5)
        on_a = (await feedback.ranking(pool, "KubePodOOMKilled:Deployment", ["rollout_restart"], scope=scope("a"),
                                       **args))[0]
        assert on_a.similar_failures == fleet_wide.similar_failures
    finally:
        await db.close()
