"""The workflow engine's executor seam, scripted: a stand-in executor whose results each test sets, and a seeded
incident with its analysis for the engine to act on."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.storage.database import Database


class ScriptedExecutor:
    """Records every request; acts once per idempotency key like the real executor."""

    def __init__(self, db: Database, verify_result: bool | None = True, fail: set[str] | None = None) -> None:
        self.db = db
        self.calls: list[ActionRequest] = []
        self.verify_result = verify_result
        self.fail = fail or set()
        self.mutations: list[str] = []

    async def execute(self, request: ActionRequest) -> ActionResult:
        self.calls.append(request)
        row = await self.db.pool.fetchrow("SELECT * FROM actions WHERE idempotency_key = $1", request.idempotency_key)
        if row is None:
            status = "dry_run" if request.dry_run else ("failed" if request.action in self.fail else "succeeded")
            row = await self.db.pool.fetchrow(
                """INSERT INTO actions (workflow_id, incident_id, action, target, parameters, idempotency_key, dry_run,
                                        status, plan, result, finished_at)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10, now())
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING *""",
                request.workflow_id, request.incident_id, request.action, request.target.model_dump(),
                request.parameters, request.idempotency_key, request.dry_run, status,
                [f"{request.action} {request.target}"], {"message": status})
            if row is None:
                row = await self.db.pool.fetchrow("SELECT * FROM actions WHERE idempotency_key = $1",
                                                  request.idempotency_key)
            elif status == "succeeded":
                self.mutations.append(request.action)
        result = ActionResult(action_id=row["id"], status=row["status"], dry_run=row["dry_run"], plan=row["plan"],
                              diff="--- before\n+++ after\n", message=row["result"]["message"],
                              error="boom" if row["status"] == "failed" else None)
        if row["status"] == "succeeded" and request.action == "scale_deployment":
            data = result.model_dump()
            data["inverse"] = {"action": "scale_deployment", "target": request.target.model_dump(),
                               "parameters": {"replicas": 2}}
            return ActionResult.model_construct(**data)
        return result

    async def verify(self, action_id: int) -> dict[str, Any]:
        return {"action_id": action_id, "passed": self.verify_result, "checks": ["replicas ready"]}


async def seed(db: Database, action: str = "scale_deployment", confidence: float = 0.9, environment: str = "staging",
               kind: str = "Deployment", parameters: dict[str, Any] | None = None, name: str = "api") -> int:
    target = {"kind": kind, "name": name, "namespace": "shop"}
    incident = await db.pool.fetchval(
        """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                  environment, priority, severity)
           VALUES ($1, $2, $3, 'shop', 'labels', ARRAY['KubeHpaMaxedOut'], $4, 'P2', 'warning') RETURNING id""",
        f"fp-{datetime.now(timezone.utc).timestamp()}", kind, name, environment)
    return await db.pool.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
           VALUES ($1, 'rules', $2, $3, $4, $5, 'too few replicas') RETURNING id""",
        incident, action, parameters if parameters is not None else {"replicas": 4}, target, confidence)
