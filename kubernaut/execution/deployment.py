"""K8s Executor: the only component that may change a cluster; every request goes through the catalog.

Idempotent on the request's key: a retried request gets the recorded outcome back and never acts
twice. In dry-run mode (the default) it records the plan — the API calls it would make — and
changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve

from kubernaut.cluster.client import ClusterConnection, connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.execution.catalog import CatalogError, catalog_document, validate_request
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.serving import ReplicaBase
from kubernaut.storage import audit

logger = logging.getLogger(__name__)


@serve.deployment(name="executor")
class K8sExecutor(ReplicaBase):
    service_name = "executor"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._cluster: ClusterConnection = await asyncio.to_thread(connect, config.kubernetes)
        if not self._cluster.available:
            logger.warning("no Kubernetes credentials (%s): dry-run only", self._cluster.reason)

    async def status(self) -> dict[str, Any]:
        return {
            "mode": self.config.execution.mode.value,
            "cluster": self._cluster.source,
            "cluster_reason": self._cluster.reason,
            "effective_dry_run": self.config.dry_run or not self._cluster.available,
        }

    async def catalog(self) -> list[dict[str, Any]]:
        return catalog_document()

    async def execute(self, request: ActionRequest) -> ActionResult:
        recorded = await self._recorded(request.idempotency_key)
        if recorded is not None:
            return recorded
        dry_run = request.dry_run or self.config.dry_run
        try:
            spec, params = validate_request(request.action, request.target, request.parameters)
        except CatalogError as exc:
            return await self._record(request, dry_run, "refused", [], f"refused: {exc}", error=str(exc))
        plan = spec.plan(request.target, params)
        if dry_run:
            message = "dry-run: nothing was changed"
            if not self._cluster.available:
                message += f" (no cluster connection: {self._cluster.reason})"
            return await self._record(request, True, "dry_run", plan.steps, message)
        if not spec.mutates:
            return await self._record(request, False, "succeeded", plan.steps, f"{spec.name}: nothing to change")
        # Live mutations arrive with the executor's safety pipeline; until then say so, never pretend.
        return await self._record(
            request, False, "refused", plan.steps,
            "live execution is not available in this version: set execution.mode=dry-run",
            error="live execution not implemented",
        )

    async def _recorded(self, key: str) -> ActionResult | None:
        row = await self.db.pool.fetchrow("SELECT * FROM actions WHERE idempotency_key = $1", key)
        return None if row is None else _result(row)

    async def _record(self, request: ActionRequest, dry_run: bool, status: str, plan: list[str], message: str,
                      error: str | None = None) -> ActionResult:
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO actions (workflow_id, incident_id, action, target, parameters, idempotency_key,
                                        dry_run, status, plan, result, error, finished_at)
                   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11, now())
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING *""",
                request.workflow_id, request.incident_id, request.action, request.target.model_dump(),
                request.parameters, request.idempotency_key, dry_run, status, plan, {"message": message}, error,
            )
            if row is None:  # a concurrent duplicate won the race: its outcome is the outcome
                row = await conn.fetchrow("SELECT * FROM actions WHERE idempotency_key = $1", request.idempotency_key)
                return _result(row)
            await audit.append(conn, "executor", f"action.{status}", request.incident_id, {
                "action_id": row["id"], "action": request.action, "target": str(request.target), "dry_run": dry_run,
            })
        return _result(row)


def _result(row: Any) -> ActionResult:
    return ActionResult(
        action_id=row["id"], status=row["status"], dry_run=row["dry_run"], plan=row["plan"], diff=row["diff"],
        message=row["result"].get("message", ""), error=row["error"],
    )
