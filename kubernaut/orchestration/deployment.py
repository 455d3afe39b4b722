"""Workflow Orchestrator deployment: a thin Serve shell around the workflow engine."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.client import connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.gitops.service import GitOpsService
from kubernaut.models.jobs import JobKind
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.observability import metrics
from kubernaut.orchestration import workflow_job
from kubernaut.orchestration.approvals import ApprovalError, expire_due
from kubernaut.orchestration.engine import WorkflowEngine
from kubernaut.serving import ReplicaBase, wake
from kubernaut.storage import approvals, incidents
from kubernaut.storage.jobs import Job

logger = logging.getLogger(__name__)


class HandleAssessments:
    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    async def assessment(self, action_id: int) -> dict[str, Any] | None:
        return await self._handle.assessment.remote(action_id)


class HandleExecutor:
    """The executor deployment seen through its handle (the engine's ExecutorPort)."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    async def execute(self, request: ActionRequest) -> ActionResult:
        return await self._handle.execute.remote(request)

    async def verify(self, action_id: int) -> dict[str, Any]:
        return await self._handle.verify.remote(action_id)


def gitops_service(config: KubernautConfig) -> GitOpsService | None:
    """Git, forges and the synced state (read-only cluster access) when repositories are configured, or
    GitOps owners are detected (a live change the controller reverts is seen at verify time)."""
    if not config.gitops.repositories and not config.gitops.detect:
        return None
    cluster = connect(config.kubernetes)
    api = ClusterAPI(cluster.api_client, config.kubernetes.request_timeout_s) if cluster.available else None
    return GitOpsService(config.gitops, api)


@serve.deployment(name="orchestrator")
class WorkflowOrchestrator(ReplicaBase):
    service_name = "orchestrator"

    async def __init__(self, config: KubernautConfig, executor: DeploymentHandle,
                       notifications_handle: DeploymentHandle, effectiveness: DeploymentHandle | None = None) -> None:
        await self._setup(config)
        self._notifications = notifications_handle
        self.engine = WorkflowEngine(self.db, HandleExecutor(executor), config,
                                     on_notification=lambda: wake(self._notifications),
                                     assessments=HandleAssessments(effectiveness) if effectiveness else None,
                                     gitops=gitops_service(config))
        # Up to max_concurrent_workflows steps run at once in one replica; each is short (waits reschedule).
        self._start_worker({JobKind.WORKFLOW: self._drive}, on_give_up=self._gave_up,
                           batch_size=config.orchestration.max_concurrent_workflows)
        self._expiry = asyncio.get_running_loop().create_task(self._expire_forever())

    async def _drive(self, job: Job) -> None:
        await workflow_job.drive(self.engine, self.db.pool, job)

    async def _expire_forever(self) -> None:
        while True:
            try:
                if await expire_due(self.db.pool) and self.worker is not None:
                    self.worker.wake()
                metrics.approvals_pending(await approvals.pending_count(self.db.pool))
                metrics.incidents_by_phase(await incidents.open_by_phase(self.db.pool))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("approval expiry sweep failed")
            await asyncio.sleep(max(1.0, self.config.work.poll_interval_s))

    async def list_approvals(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return [a.model_dump() for a in await approvals.listing(self.db.pool, status, limit)]

    async def decide(self, approval_id: int, approve: bool, principal: dict[str, Any], reason: str | None,
                     override: dict[str, Any] | None, source: dict[str, Any] | None = None) -> dict[str, Any]:
        """The gateway's call: ``principal`` is the authenticated caller (``Principal.model_dump(mode="json")``),
        ``source`` its request's {address, user_agent}. Refusals come back as {error, status} (4xx; 503 when
        the executor cannot dry-run an override)."""
        try:
            decided = await self.engine.decide(approval_id, approve, principal, reason, override, source)
        except ApprovalError as exc:
            return {"error": str(exc), "status": exc.status}
        if self.worker is not None:
            self.worker.wake()
        return {"approval": decided}

    async def _gave_up(self, job: Job, error: str) -> None:
        await workflow_job.give_up(self.db.pool, self.service_name, job, error)

    async def __del__(self) -> None:
        self._expiry.cancel()
        await super().__del__()
