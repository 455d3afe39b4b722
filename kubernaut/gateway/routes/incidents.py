"""Incidents and the alerts received: read views."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from kubernaut.gateway.routes.limits import MAX_ID, MAX_OFFSET
from kubernaut.gateway.services import Services, requires
from kubernaut.storage import views

router = APIRouter()

ListIncidents = requires("list", "incidents")
GetIncidents = requires("get", "incidents")
ListAlerts = requires("list", "alerts")


@router.get("/api/v1/incidents", summary="Incidents, newest first")
async def list_incidents(
    request: Request,
    svc: Services,
    caller: ListIncidents,
    status: str | None = Query(default=None, pattern="^(open|resolved|closed)$"),
    namespace: str | None = Query(default=None, max_length=63),
    cluster: str | None = Query(default=None, max_length=63, pattern=r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$",
                                description="only this cluster's incidents (a fleet)"),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET)
) -> JSONResponse:
    items = await views.list_incidents(svc.db.pool, status=status, namespace=namespace, limit=limit, offset=offset,
                                       cluster=cluster)
    return JSONResponse(jsonable_encoder({"items": items, "limit": limit, "offset": offset}))


@router.get("/api/v1/incidents/{incident_id}", summary="One incident with alerts, analysis, workflow, actions")
async def get_incident(
    request: Request,
    svc: Services,
    caller: GetIncidents,
    incident_id: int = FastApiPath(ge=1, le=MAX_ID),
    limit: int = Query(default=views.DETAIL_PAGE, ge=1, le=views.DETAIL_PAGE_MAX),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET)
) -> JSONResponse:
    view = await views.incident_detail(svc.db.pool, incident_id, limit=limit, offset=offset)
    if view is None:
        raise HTTPException(status_code=404, detail=f"incident {incident_id} not found")
    return JSONResponse(jsonable_encoder(view))


@router.get("/api/v1/alerts", summary="Received alerts, newest first: rejected ones with the reason, or pending")
async def list_alerts(
    request: Request,
    svc: Services,
    caller: ListAlerts,
    outcome: str | None = Query(default=None, pattern="^(rejected|pending)$"),
    namespace: str | None = Query(default=None, max_length=63),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET)
) -> JSONResponse:
    items = await views.list_alerts(svc.db.pool, outcome=outcome, namespace=namespace, limit=limit, offset=offset)
    return JSONResponse(jsonable_encoder({"items": items, "limit": limit, "offset": offset}))
