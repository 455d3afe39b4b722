"""Workflow Orchestrator: an analysis becomes a recorded workflow of steps (policy → action → notify).

Each step is a row; a replica that dies mid-workflow leaves the job's lease to expire and another
replica resumes from the first unfinished step. The executor's idempotency key makes a repeated
action step return the recorded result instead of acting twice.
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import KubernautConfig
from kubernaut.models.resource import ResourceRef
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.serving import ReplicaBase, nudge
from kubernaut.storage import audit, incidents, notifications
from kubernaut.storage.jobs import Job

logger = logging.getLogger(__name__)


@serve.deployment(name="orchestrator")
class WorkflowOrchestrator(ReplicaBase):
    service_name = "orchestrator"

    async def __init__(self, config: KubernautConfig, executor: DeploymentHandle,
                       notifications_handle: DeploymentHandle) -> None:
        await self._setup(config)
        self._executor = executor
        self._notifications = notifications_handle
        self._start_worker({"orchestrate": self._run_workflow}, on_give_up=self._gave_up)

    async def _run_workflow(self, job: Job) -> None:
        analysis = await self.db.pool.fetchrow("SELECT * FROM analyses WHERE id = $1", job.ref_id)
        if analysis is None:
            return
        incident_id = analysis["incident_id"]
        dry_run = self.config.dry_run
        async with self.db.pool.acquire() as conn, conn.transaction():
            workflow_id = await conn.fetchval(
                """INSERT INTO workflows (incident_id, analysis_id, phase, dry_run) VALUES ($1, $2, 'pending', $3)
                   ON CONFLICT (analysis_id) DO NOTHING RETURNING id""",
                incident_id, analysis["id"], dry_run,
            )
            if workflow_id is not None:
                await audit.append(conn, "orchestrator", "workflow.created", incident_id,
                                   {"workflow_id": workflow_id, "dry_run": dry_run})
        if workflow_id is None:
            workflow = await self.db.pool.fetchrow("SELECT * FROM workflows WHERE analysis_id = $1", analysis["id"])
            workflow_id, dry_run = workflow["id"], workflow["dry_run"]
            if workflow["phase"] in ("completed", "failed"):
                return
        done = {r["name"]: r for r in await self.db.pool.fetch(
            "SELECT * FROM workflow_steps WHERE workflow_id = $1 AND finished_at IS NOT NULL", workflow_id)}

        if "policy" not in done:
            decision = self._policy(analysis, dry_run)
            await self._record_step(workflow_id, 1, "policy", "succeeded", decision)
            await self.db.pool.execute(
                "UPDATE workflows SET decision = $2, phase = 'executing', updated_at = now() WHERE id = $1",
                workflow_id, decision,
            )

        step_name = "dry_run" if dry_run else "execute"
        if step_name not in done:
            request = ActionRequest(
                workflow_id=workflow_id, incident_id=incident_id, action=analysis["action"],
                target=ResourceRef.model_validate(analysis["target"]), parameters=analysis["parameters"],
                idempotency_key=f"workflow-{workflow_id}-{step_name}", dry_run=dry_run,
            )
            result: ActionResult = await self._executor.execute.remote(request)
            status = "succeeded" if result.status in ("dry_run", "succeeded") else "failed"
            await self._record_step(workflow_id, 2, step_name, status, result.model_dump(mode="json"))
        else:
            result = ActionResult.model_validate(done[step_name]["detail"])

        phase = "completed" if result.status in ("dry_run", "succeeded") else "failed"
        incident_phase = {"dry_run": "dry_run_completed", "succeeded": "remediated"}.get(result.status, "action_failed")
        async with self.db.pool.acquire() as conn, conn.transaction():
            changed = await conn.fetchval(
                "UPDATE workflows SET phase = $2, updated_at = now() WHERE id = $1 AND phase <> $2 RETURNING id",
                workflow_id, phase,
            )
            if changed is None:
                return  # another replica finished this workflow already
            await incidents.set_phase(conn, incident_id, incident_phase)
            await audit.append(conn, "orchestrator", f"workflow.{phase}", incident_id,
                               {"workflow_id": workflow_id, "action_status": result.status})
            await notifications.create(conn, incident_id, f"workflow.{phase}", **self._message(analysis, result))
            await conn.execute(
                """INSERT INTO workflow_steps (workflow_id, seq, name, status, detail, finished_at)
                   VALUES ($1, 3, 'notify', 'succeeded', $2, now()) ON CONFLICT DO NOTHING""",
                workflow_id, {"event": f"workflow.{phase}"},
            )
        nudge(self._notifications)

    def _policy(self, analysis: Any, dry_run: bool) -> dict[str, Any]:
        if dry_run:
            return {"verdict": "simulate", "reason": "execution mode is dry-run: the action is planned, not applied"}
        return {"verdict": "allow", "reason": "live execution enabled"}

    async def _record_step(self, workflow_id: int, seq: int, name: str, status: str, detail: dict[str, Any]) -> None:
        await self.db.pool.execute(
            """INSERT INTO workflow_steps (workflow_id, seq, name, status, detail, finished_at)
               VALUES ($1, $2, $3, $4, $5, now())
               ON CONFLICT (workflow_id, seq) DO UPDATE SET status = EXCLUDED.status, detail = EXCLUDED.detail,
                   finished_at = EXCLUDED.finished_at""",
            workflow_id, seq, name, status, detail,
        )

    def _message(self, analysis: Any, result: ActionResult) -> dict[str, str]:
        target = ResourceRef.model_validate(analysis["target"])
        mode = "DRY-RUN (nothing changed)" if result.dry_run else "LIVE"
        lines = [
            f"Incident #{analysis['incident_id']} — {analysis['root_cause']}",
            f"Action: {analysis['action']} on {target} [{mode}] → {result.status}",
            f"Engine: {analysis['engine']} (confidence {analysis['confidence']:.2f})",
        ]
        if result.plan:
            lines.append("Plan:")
            lines.extend(f"  - {step}" for step in result.plan)
        if result.error:
            lines.append(f"Error: {result.error}")
        severity = "info" if result.status == "dry_run" else ("success" if result.status == "succeeded" else "failure")
        return {"title": f"[kubernaut] {analysis['action']} on {target}: {result.status}",
                "body": "\n".join(lines), "severity": severity}

    async def _gave_up(self, job: Job, error: str) -> None:
        incident_id = await self.db.pool.fetchval("SELECT incident_id FROM analyses WHERE id = $1", job.ref_id)
        async with self.db.pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE workflows SET phase = 'failed', updated_at = now() WHERE analysis_id = $1",
                               job.ref_id)
            if incident_id is not None:
                await incidents.set_phase(conn, incident_id, "workflow_failed")
                await audit.append(conn, "orchestrator", "workflow.failed", incident_id, {"error": error})
                await notifications.create(conn, incident_id, "workflow.failed",
                                           title="[kubernaut] workflow failed",
                                           body=f"Incident #{incident_id}: workflow gave up: {error}",
                                           severity="failure")
