"""The durable work queue: jobs, dead letters and their replay."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi import Path as FastApiPath
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kubernaut.gateway.errors import other_actor
from kubernaut.gateway.routes.limits import MAX_ID, MAX_OFFSET
from kubernaut.gateway.services import Services, requires
from kubernaut.serving import wake
from kubernaut.storage import jobs as job_store

router = APIRouter()

ListJobs = requires("list", "jobs")
ReplayJobs = requires("replay", "jobs")


class JobReplay(BaseModel):
    """Why a dead job is replayed (recorded in the audit trail with the authenticated caller as the actor; ``by``
    may only repeat the caller's name, as older clients send it)."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, min_length=1, max_length=300, pattern=r"^[^\x00-\x1f\x7f]+$")
    reason: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")


@router.get("/api/v1/jobs", summary="Jobs of the durable work queue; state=dead lists the dead letters")
async def list_jobs(
    request: Request,
    svc: Services,
    caller: ListJobs,
    state: str | None = Query(default=None, pattern="^(pending|running|done|dead)$"),
    kind: str | None = Query(default=None, max_length=63, pattern="^[a-z_]+$"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET)
) -> JSONResponse:
    items = await job_store.listing(svc.db.pool, state=state, kind=kind, limit=limit, offset=offset)
    counts = await job_store.counts(svc.db.pool)
    return JSONResponse(jsonable_encoder({"items": items, "counts": counts, "limit": limit, "offset": offset}))


@router.post("/api/v1/jobs/{job_id}/retry", summary="Replay a dead job: due now, with fresh attempts")
async def retry_job(request: Request, svc: Services, caller: ReplayJobs, job_id: int = FastApiPath(ge=1, le=MAX_ID),
                    replay: JobReplay | None = None) -> JSONResponse:
    replay = replay or JobReplay()
    if (forged := other_actor(replay.by, caller)) is not None:
        return forged
    try:
        async with svc.db.pool.acquire() as conn, conn.transaction():
            job = await job_store.retry(conn, job_id, caller.actor, replay.reason)
    except job_store.JobStateError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    # Its consumer polls anyway; waking it only saves the poll interval.
    wake(svc.deployments.consumer_of(job.kind))
    return JSONResponse(jsonable_encoder({"job": job}))
