"""The ``workflow`` job: one per analysis, from the analysis's hand-off to the workflow's end.

The analysis enqueues it in the transaction that commits the analysis; its first run creates the
workflow (once: a re-run finds it), every run advances it until it ends or waits (``Reschedule``), and
an approval decision or expiry wakes it. Its ``ref_id`` is the analysis id (kubernaut.models.jobs), so the
hand-off needs nothing the orchestrator has not created yet.
"""

from __future__ import annotations

import logging
from typing import Protocol

import asyncpg

from kubernaut.models.jobs import AnalysisRef, JobKind
from kubernaut.storage import audit, incidents, jobs, workflows
from kubernaut.storage.jobs import GAVE_UP_PREFIX, Job

logger = logging.getLogger(__name__)


class WorkflowDriver(Protocol):
    """What the job needs of the engine (:class:`kubernaut.orchestration.engine.WorkflowEngine`)."""

    async def start(self, analysis_id: int) -> int | None: ...

    async def advance(self, workflow_id: int) -> None: ...


async def drive(engine: WorkflowDriver, pool: asyncpg.Pool, job: Job) -> None:
    """The job's handler: create the analysis's workflow if it is not there yet, then advance it."""
    analysis_id = job.payload(AnalysisRef).analysis_id
    existing = await workflows.of_analysis(pool, analysis_id)
    workflow_id = existing.id if existing is not None else await engine.start(analysis_id)
    if workflow_id is not None:
        await engine.advance(workflow_id)


async def wake(conn: asyncpg.Connection | asyncpg.Pool, workflow_id: int) -> None:
    """Make the job of a workflow due now (an approval was decided or expired)."""
    workflow = await workflows.get(conn, workflow_id)
    if workflow is None:
        logger.warning("workflow %s not found: nothing to wake", workflow_id)
        return
    await jobs.wake(conn, JobKind.WORKFLOW, AnalysisRef(analysis_id=workflow.analysis_id))


async def give_up(pool: asyncpg.Pool, actor: str, job: Job, error: str) -> None:
    """The job died (dead letter): its workflow fails and the incident says so. The prefix in the workflow's
    error marks a workflow its dead job ended: replaying the job reopens it (jobs.retry)."""
    analysis_id = job.payload(AnalysisRef).analysis_id
    workflow = await workflows.of_analysis(pool, analysis_id)
    if workflow is None:
        incident_id = await workflows.incident_of_analysis(pool, analysis_id)
    else:
        incident_id = workflow.incident_id
        await workflows.mark_gave_up(pool, workflow.id, f"{GAVE_UP_PREFIX} {job.attempts} attempts: {error}")
    if incident_id is not None:
        async with pool.acquire() as conn, conn.transaction():
            await incidents.set_phase(conn, incident_id, "workflow_failed")
            await audit.append(conn, actor, "workflow.gave_up", incident_id, {"error": error})
