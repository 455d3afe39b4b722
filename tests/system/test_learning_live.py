"""The learning loop end to end on a real Ray cluster against the real control plane: a repeated OOM.

AlertManager-shaped webhooks for a workload whose containers keep being OOMKilled (a leak: more memory
does not help). The first incident raises memory live; the effectiveness monitor scores it ineffective
and the orchestrator rolls it back. The second and third occurrences — new incidents after the first
resolved — are decided with that outcome: memory is not raised again, a human gets the evidence.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from kubernaut.execution.kube import Kube
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    admin_fixture,
    container,
    executor_role_fixture,
    pods,
    workload,
)
from tests.support.live_app import live_application
from tests.support.polling import eventually

pytestmark = pytest.mark.k8s


@pytest_asyncio.fixture(loop_scope="session")
async def learning_app(serve_app: Any, fresh_dsn: str, kube_testenv: Any, executor_role: Any
                       ) -> AsyncIterator[tuple[str, str]]:
    """The whole application, live, as the executor's RBAC identity, with short windows."""
    async with live_application(
        serve_app, "learn", fresh_dsn, kube_testenv.executor_kubeconfig,
        execution={"cooldown_s": 0},
        orchestration={"stabilization_s": 3, "verify_interval_s": 0.5, "verify_timeout_s": 60,
                       "autonomy_min_cases": 0, "autonomy_min_lower_bound": 0, "cooldown_s": 0},
        effectiveness={"retry_initial_s": 0.5, "sweep_interval_s": 2},
        work={"poll_interval_s": 0.5, "lease_s": 10},
    ) as base:
        yield base, fresh_dsn


def webhook(namespace: str, pod: str, status: str, starts_at: datetime) -> dict[str, Any]:
    labels = {"alertname": "KubePodCrashLooping", "namespace": namespace, "pod": pod, "container": "app",
              "severity": "warning", "job": "kube-state-metrics"}
    alert = {"status": status, "labels": labels,
             "annotations": {"summary": "Pod is crash looping.",
                             "description": f"Pod {namespace}/{pod} (app) is waiting (reason: CrashLoopBackOff)."},
             "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
             "endsAt": (starts_at + timedelta(minutes=1)).isoformat().replace("+00:00", "Z") if status == "resolved"
             else "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": f"{abs(hash((pod, starts_at))):016x}"}
    return {"version": "4", "groupKey": "{}:{alertname=\"KubePodCrashLooping\"}", "truncatedAlerts": 0,
            "status": status, "receiver": "kubernaut", "groupLabels": {"alertname": "KubePodCrashLooping"},
            "commonLabels": labels, "commonAnnotations": alert["annotations"], "externalURL": "http://am",
            "alerts": [alert]}


async def test_a_repeated_oom_is_not_remediated_the_same_way_after_an_ineffective_fix(
    learning_app: tuple[str, str], admin: Kube, kube_namespace: str
) -> None:
    base, dsn = learning_app
    ns = kube_namespace
    body = workload("Deployment", "leaky", replicas=2, containers=[container("app", limits={"memory": "64Mi"})],
                    template_annotations={SIM_STATE: "OOMKilled"}, spec_extra={"strategy": {"type": "Recreate"}})
    await admin.create("Deployment", ns, body)

    async def oom_pod() -> str | None:
        for pod in await pods(admin, ns, "leaky"):
            for status in pod.get("status", {}).get("containerStatuses") or []:
                if (status.get("lastState", {}).get("terminated") or {}).get("reason") == "OOMKilled":
                    return pod["metadata"]["name"]
        return None

    db = await asyncpg.connect(dsn)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as client:
            async def fire(at: datetime) -> int:
                pod = await eventually(oom_pod, timeout=60, what="an OOMKilled pod of leaky")
                response = await client.post("/api/v1/alerts", json=webhook(ns, pod, "firing", at))
                assert response.status_code == 200, response.text

                async def opened() -> int | None:
                    return await db.fetchval(
                        """SELECT id FROM incidents WHERE target_name = 'leaky' AND target_namespace = $1
                           AND status = 'open' ORDER BY id DESC LIMIT 1""", ns)

                return await eventually(opened, timeout=60, what="an open incident for leaky")

            async def resolve(incident: int) -> None:
                for alert in await db.fetch("SELECT labels, starts_at FROM alerts WHERE incident_id = $1", incident):
                    labels = json.loads(alert["labels"]) if isinstance(alert["labels"], str) else alert["labels"]
                    payload = webhook(ns, labels["pod"], "resolved", alert["starts_at"])
                    assert (await client.post("/api/v1/alerts", json=payload)).status_code == 200

                async def resolved() -> bool:
                    return await db.fetchval("SELECT status FROM incidents WHERE id = $1", incident) == "resolved"

                await eventually(resolved, timeout=60, what=f"incident {incident} resolved")

            async def finished(incident: int) -> dict[str, Any]:
                async def done() -> dict[str, Any] | None:
                    view = (await client.get(f"/api/v1/incidents/{incident}")).json()
                    workflow = view.get("workflow") or {}
                    return view if workflow.get("finished_at") else None

                return await eventually(done, timeout=150, interval=1, what=f"workflow of incident {incident}")

            # 1st occurrence: the rules raise memory (OOMKilled → never a rollback), live.
            first = await fire(datetime.now(timezone.utc) - timedelta(minutes=10))
            view = await finished(first)
            assert view["analysis"]["action"] == "increase_memory_limits"
            assert view["analysis"]["rule_id"] == "oom-at-limit"
            live = [a for a in view["actions"] if not a["dry_run"] and a["action"] == "increase_memory_limits"]
            assert live and live[0]["status"] == "succeeded"
            # Pods still OOM on more memory: the monitor scores it ineffective, the change is undone.

            async def scored() -> dict[str, Any] | None:
                row = await db.fetchrow(
                    "SELECT verdict, score, reasons FROM assessments WHERE action_id = $1 AND status = 'done'",
                    live[0]["id"])
                return dict(row) if row else None

            assessment = await eventually(scored, timeout=120, interval=1, what="the assessment of the first fix")
            assert assessment["verdict"] == "ineffective", assessment
            assert view["workflow"]["phase"] in ("rolled_back", "failed")
            await resolve(first)

            # 2nd and 3rd occurrences: decided with the first outcome.
            for round_ in (2, 3):
                incident = await fire(datetime.now(timezone.utc) - timedelta(minutes=5 - round_))
                assert incident != first
                view = await finished(incident)
                analysis = view["analysis"]
                assert analysis["action"] == "notify_only", analysis
                assert analysis["rule_id"] == "oom-at-limit+learned"
                assert any("increase_memory_limits for KubePodCrashLooping:Deployment: 0/1 effective" in line
                           for line in analysis["reasoning"]), analysis["reasoning"]
                assert analysis["alternatives"][0]["action"] == "increase_memory_limits"
                assert "0/1 effective" in analysis["parameters"]["reason"]
                assert not [a for a in view["actions"] if not a["dry_run"] and a["action"] != "notify_only"]
                assert view["workflow"]["phase"] == "completed" and view["phase"] == "escalated"
                # The human who gets it reads why: the notification carries the evidence.
                assert any("0/1 effective" in (n["body"] or "") for n in view["notifications"])
                await resolve(incident)
    finally:
        await db.close()
