"""The Effectiveness Monitor against the real control plane (simulated kubelet), a real AlertManager and a
real Prometheus whose alert rule fires and resolves from a metric the test steers.

Each scenario records an action the way the executor and orchestrator do (an ``actions`` row, its
``execute:0`` step, and the ``assess`` job in the same transaction), acts on the cluster itself (the
live executor is another component), and lets a real job worker run the assessment. The stabilization
window is long; once the cluster has settled the test makes the assessment due (``due_at = now()``)
instead of sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from kubernetes import client

from kubernaut.config import load_config
from kubernaut.effectiveness.monitor import Assessor, get_assessment
from kubernaut.effectiveness.target_reader import TargetReader
from kubernaut.intelligence import feedback
from kubernaut.intelligence.mining import mine_stats
from kubernaut.job_worker import JobWorker
from kubernaut.models.jobs import ActionRef, JobKind
from kubernaut.storage import jobs
from tests.plugins.kube_testenv import KubeTestEnv
from tests.plugins.prometheus import ALERT_NAME, PrometheusStack, prometheus_stack  # noqa: F401 (fixture)
from tests.support.incident_history import OOM_FACTS, connect, seed_action, seed_incident
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

SIM_STATE = "sim.kubernaut.io/state"
SIGNATURE = f"{ALERT_NAME}:Deployment"


def deployment(name: str, state: str | None) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            # Recreate: a rollout of crashing pods would stall half-way with RollingUpdate (as it should in
            # production); the tests want every pod on the new template.
            strategy=client.V1DeploymentStrategy(type="Recreate"),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations={SIM_STATE: state} if state else None),
                spec=client.V1PodSpec(termination_grace_period_seconds=1, containers=[client.V1Container(
                    name="app", image="nginx:1.25",
                    resources=client.V1ResourceRequirements(limits={"memory": "64Mi"}))]))))


@dataclass
class Scenario:
    pool: Any
    apps: client.AppsV1Api
    core: client.CoreV1Api
    namespace: str
    stack: PrometheusStack

    async def pods(self, name: str) -> list[client.V1Pod]:
        listing = await asyncio.to_thread(self.core.list_namespaced_pod, self.namespace, label_selector=f"app={name}")
        return [p for p in listing.items if p.metadata.deletion_timestamp is None]

    async def wait_pods(self, name: str, *, ready: bool, template_hash: str | None = None) -> None:
        """All live pods ready (or all crashing, with a restart already), optionally of one template."""
        async def settled() -> bool:
            pods = await self.pods(name)
            if template_hash:
                pods = [p for p in pods if (p.metadata.annotations or {}).get("kubectl.kubernetes.io/restartedAt")
                        == template_hash]
            if len(pods) != 2:
                return False
            states = []
            for pod in pods:
                statuses = pod.status.container_statuses or []
                states.append(bool(statuses) and all(c.ready for c in statuses) if ready else
                              any(c.restart_count > 0 and c.state.waiting is not None for c in statuses))
            return all(states)

        await eventually(settled, timeout=60, what=f"pods of {name} {'ready' if ready else 'crashing'}")

    async def deploy(self, name: str, state: str | None) -> None:
        await asyncio.to_thread(self.apps.create_namespaced_deployment, self.namespace, deployment(name, state))
        await self.wait_pods(name, ready=state is None)

    async def alert_firing(self, name: str) -> dict[str, str]:
        """Make the app's error ratio high and wait until Prometheus has the alert active in AlertManager."""
        self.stack.exporter.set(self.namespace, name, 0.9)

        async def active() -> dict[str, str] | None:
            for alert in await asyncio.to_thread(self.stack.active_alerts):
                if alert["labels"].get("deployment") == name and alert["labels"].get("namespace") == self.namespace:
                    return alert["labels"]
            return None

        return await eventually(active, timeout=60, what=f"{ALERT_NAME} active for {name}")

    async def recover(self, name: str) -> None:
        """The app works again: its error ratio drops and Prometheus resolves the alert."""
        self.stack.exporter.set(self.namespace, name, 0.0)

        async def resolved() -> bool:
            alerts = await asyncio.to_thread(self.stack.active_alerts)
            return not any(a["labels"].get("deployment") == name and a["labels"].get("namespace") == self.namespace
                           for a in alerts)

        await eventually(resolved, timeout=60, what=f"{ALERT_NAME} resolved for {name}")

    async def incident(self, name: str, labels: dict[str, str]) -> int:
        return await seed_incident(self.pool, signals=[ALERT_NAME], name=name, namespace=self.namespace,
                                   facts=OOM_FACTS, alert_labels=labels, status="open")

    async def act(self, incident_id: int, action: str, parameters: dict[str, Any] | None = None) -> int:
        """Record the executed action and schedule its assessment in one transaction (as the orchestrator)."""
        async with self.pool.acquire() as conn, conn.transaction():
            action_id = await seed_action(conn, incident_id, action, parameters=parameters)
            await conn.execute("UPDATE actions SET created_at = now(), finished_at = now() WHERE id = $1", action_id)
            # The orchestrator's own call after a live execution (kubernaut/orchestration/engine.py).
            assert await jobs.enqueue(conn, JobKind.ASSESS, ActionRef(action_id=action_id))
        # The first run takes the baseline right away, then waits for the (long) stabilization window.
        await eventually(lambda: self._baseline(action_id), timeout=30, what="baseline taken")
        return action_id

    async def _baseline(self, action_id: int) -> bool:
        return await self.pool.fetchval("SELECT baseline IS NOT NULL FROM assessments WHERE action_id = $1",
                                        action_id) or False

    async def due_now(self, action_id: int) -> None:
        await self.pool.execute("UPDATE assessments SET due_at = now() WHERE action_id = $1", action_id)
        await jobs.wake(self.pool, JobKind.ASSESS, ActionRef(action_id=action_id))

    async def verdict(self, action_id: int, timeout: float = 60) -> dict[str, Any]:
        async def final() -> dict[str, Any] | None:
            found = await get_assessment(self.pool, action_id)
            return found if found and found["status"] in ("done", "expired") else None

        return await eventually(final, timeout=timeout, what=f"assessment of action {action_id}")

    # -- the cluster changes an executor would make --------------------------------------------------

    async def raise_memory(self, name: str) -> None:
        """increase_memory_limits; the simulated kubelet stops OOM-killing the new pods."""
        body = {"spec": {"template": {"metadata": {"annotations": {SIM_STATE: None}}, "spec": {"containers": [
            {"name": "app", "resources": {"limits": {"memory": "256Mi"}}}]}}}}
        await asyncio.to_thread(self.apps.patch_namespaced_deployment, name, self.namespace, body)

    async def restart(self, name: str, stamp: str) -> None:
        """rollout_restart: new pods, same spec, same problem."""
        body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
        await asyncio.to_thread(self.apps.patch_namespaced_deployment, name, self.namespace, body)


@pytest_asyncio.fixture(loop_scope="session")
async def scenario(fresh_dsn: str, kube_testenv: KubeTestEnv, kube_api_client: client.ApiClient, kube_namespace: str,
                   prometheus_stack: PrometheusStack) -> AsyncIterator[tuple[Scenario, Assessor]]:  # noqa: F811
    db = await connect(fresh_dsn)
    config = load_config({
        "storage": {"dsn": fresh_dsn},
        "kubernetes": {"kubeconfig": kube_testenv.admin_kubeconfig},
        "orchestration": {"stabilization_s": 3600},
        "effectiveness": {
            "alertmanager_url": prometheus_stack.alertmanager_url, "prometheus_url": prometheus_stack.prometheus_url,
            "metric_queries": [{"name": "error_rate",
                                "query": 'max(app_error_ratio{namespace="{namespace}",deployment="{name}"})'}],
            "validity_s": 600, "retry_initial_s": 0.3, "retry_max_s": 1.0, "http_timeout_s": 2},
    })
    reader_client = kube_testenv.api_client()
    assessor = Assessor(db.pool, config, TargetReader(reader_client, 10))
    worker = JobWorker(db.pool, {JobKind.ASSESS: assessor.handle}, owner="test-effectiveness", poll_interval_s=0.2,
                       lease_s=30, max_attempts=5, batch_size=10)
    worker.start()
    try:
        yield Scenario(db.pool, client.AppsV1Api(kube_api_client), client.CoreV1Api(kube_api_client), kube_namespace,
                       prometheus_stack), assessor
    finally:
        await worker.stop()
        reader_client.close()
        await db.close()


async def test_repeated_oom_fix_scores_high_restart_scores_low_and_ranking_moves(
        scenario: tuple[Scenario, Assessor]) -> None:
    s, _ = scenario
    await s.deploy("cart", "OOMKilled")
    labels = await s.alert_firing("cart")

    # First occurrence: a restart. New pods, same limit: still OOMKilled, the alert keeps firing.
    first = await s.incident("cart", labels)
    await s.restart("cart", "first")
    restart_id = await s.act(first, "rollout_restart")
    await s.wait_pods("cart", ready=False, template_hash="first")
    await s.due_now(restart_id)
    low = await s.verdict(restart_id)
    assert low["status"] == "done" and low["verdict"] == "ineffective", low["reasons"]
    assert low["score"] < 0.2 and low["health"] == 0.0 and low["alert"] == 0.0 and low["metrics"] == 0.0
    assert low["drift"] is False
    assert any("still active in AlertManager" in r for r in low["reasons"])

    # The evidence now demotes the restart for this kind of incident.
    await mine_stats(s.pool, batch=1000, budget_s=30)
    ranked = await feedback.ranking(s.pool, SIGNATURE, ["rollout_restart", "increase_memory_limits"])
    assert [r.action for r in ranked] == ["increase_memory_limits", "rollout_restart"]
    assert ranked[1].evidence.failures == 1

    # Second occurrence: more memory. Pods come up ready, the error ratio drops, the alert resolves.
    # (A human closed the escalated first incident; the OOM comes back as a new one.)
    await s.pool.execute("UPDATE incidents SET status = 'closed' WHERE id = $1", first)
    second = await s.incident("cart", labels)
    await s.raise_memory("cart")
    memory_id = await s.act(second, "increase_memory_limits", {"container": "app", "memory": "256Mi"})
    await s.wait_pods("cart", ready=True)
    await s.recover("cart")
    await s.due_now(memory_id)
    high = await s.verdict(memory_id)
    assert high["status"] == "done" and high["verdict"] == "effective", high["reasons"]
    assert high["score"] >= 0.95 and high["health"] == 1.0 and high["alert"] == 1.0 and high["metrics"] == 1.0
    assert high["components"]["metrics"]["detail"]["measured"]["error_rate"]["before"] == pytest.approx(0.9)

    # Third occurrence: the measured record ranks memory first, and the autonomy gate sees it.
    ranked = await feedback.ranking(s.pool, SIGNATURE, ["rollout_restart", "increase_memory_limits"])
    assert [r.action for r in ranked] == ["increase_memory_limits", "rollout_restart"]
    assert ranked[0].evidence.successes == 1 and ranked[0].value > 0.5 > ranked[1].value
    evidence = await feedback.evidence_for(s.pool, SIGNATURE, "increase_memory_limits")
    assert (evidence.successes, evidence.cases) == (1, 1) and evidence.lower_bound > 0


async def test_drift_during_the_window_is_inconclusive(scenario: tuple[Scenario, Assessor]) -> None:
    s, _ = scenario
    await s.deploy("api", "OOMKilled")
    labels = await s.alert_firing("api")
    incident = await s.incident("api", labels)
    await s.raise_memory("api")
    action_id = await s.act(incident, "increase_memory_limits", {"container": "app", "memory": "256Mi"})
    await s.wait_pods("api", ready=True)
    # Someone else edits the workload during the window.
    await asyncio.to_thread(
        s.apps.patch_namespaced_deployment, "api", s.namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}},
        field_manager="kubectl-edit")
    await s.recover("api")
    await s.due_now(action_id)
    found = await s.verdict(action_id)
    assert found["verdict"] == "inconclusive" and found["drift"] is True, found["reasons"]
    assert "kubectl-edit" in found["components"]["drift"]["reason"]
    assert any("changed by someone else" in r for r in found["reasons"])


async def test_alertmanager_outage_retries_then_completes(scenario: tuple[Scenario, Assessor]) -> None:
    s, _ = scenario
    await s.deploy("queue", "CrashLoopBackOff")
    labels = await s.alert_firing("queue")
    incident = await s.incident("queue", labels)
    await s.raise_memory("queue")
    action_id = await s.act(incident, "increase_memory_limits", {"container": "app", "memory": "256Mi"})
    await s.wait_pods("queue", ready=True)
    await s.recover("queue")

    await asyncio.to_thread(s.stack.stop_alertmanager)
    await s.due_now(action_id)

    async def retried() -> bool:
        row = await s.pool.fetchrow("SELECT attempts, last_error, status FROM assessments WHERE action_id = $1",
                                    action_id)
        return row["status"] == "pending" and row["attempts"] >= 2 and "AlertManager" in (row["last_error"] or "")

    await eventually(retried, timeout=30, what="assessment retrying while AlertManager is down")
    await asyncio.to_thread(s.stack.start_alertmanager)
    found = await s.verdict(action_id)
    assert found["status"] == "done" and found["verdict"] == "effective", found["reasons"]
    assert found["attempts"] >= 2 and found["alert"] == 1.0


async def test_validity_window_expires_cleanly(scenario: tuple[Scenario, Assessor]) -> None:
    s, _ = scenario
    await s.deploy("batch", None)
    labels = await s.alert_firing("batch")
    incident = await s.incident("batch", labels)
    await s.restart("batch", "x")
    action_id = await s.act(incident, "rollout_restart")
    await s.wait_pods("batch", ready=True, template_hash="x")
    await s.recover("batch")
    await asyncio.to_thread(s.stack.stop_alertmanager)
    await s.pool.execute("UPDATE assessments SET expires_at = now() + interval '3 seconds' WHERE action_id = $1",
                         action_id)
    await s.due_now(action_id)
    found = await s.verdict(action_id, timeout=30)
    assert found["status"] == "expired", found
    assert found["components"].get("alert") is None  # never measured
    assert found["health"] == 1.0 and found["metrics"] == 1.0 and found["verdict"] == "effective"
    assert any("validity window closed" in r and "AlertManager" in r for r in found["reasons"])
    # A job claimed long after the window closed does not judge the cluster of today.
    late = await s.act(incident, "rollout_restart")
    await s.pool.execute("UPDATE assessments SET due_at = now() - interval '2 hours', "
                         "expires_at = now() - interval '1 hour' WHERE action_id = $1", late)
    await jobs.wake(s.pool, JobKind.ASSESS, ActionRef(action_id=late))
    stale = await s.verdict(late)
    assert stale["status"] == "expired" and stale["verdict"] == "inconclusive" and stale["score"] is None


async def test_dry_run_and_read_only_actions_are_not_scored(scenario: tuple[Scenario, Assessor]) -> None:
    s, assessor = scenario
    incident = await seed_incident(s.pool, signals=[ALERT_NAME], name="nothing", namespace=s.namespace)
    dry = await seed_action(s.pool, incident, "rollout_restart", dry_run=True)
    read_only = await seed_action(s.pool, incident, "collect_diagnostics")
    for action_id in (dry, read_only):
        await assessor.run(action_id)
        found = await get_assessment(s.pool, action_id)
        assert found is not None and found["status"] == "not_applicable"
    assert await s.pool.fetchval("SELECT count(*) FROM assessments") == 0
    # The sweep enqueues only live executed actions that lack a job.
    live = await seed_action(s.pool, incident, "rollout_restart")
    assert await assessor.sweep() == 1 and await assessor.sweep() == 0
    assert await s.pool.fetchval("SELECT count(*) FROM jobs WHERE kind = 'assess' AND ref_id = $1", live) == 1
