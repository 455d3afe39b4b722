"""What Kubernaut learned: effectiveness of executed actions and history per alert signature."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services, requires
from kubernaut.storage import fleet

router = APIRouter()

GetEffectiveness = requires("get", "effectiveness")
ListPatterns = requires("list", "patterns")


@router.get("/api/v1/effectiveness", summary="How executed actions worked")
async def effectiveness(request: Request, svc: Services, caller: GetEffectiveness) -> JSONResponse:
    return JSONResponse(jsonable_encoder(await svc.deployments.effectiveness.summary.remote()))


@router.get("/api/v1/patterns", summary="History per alert signature and action")
async def patterns(request: Request, svc: Services, caller: ListPatterns) -> JSONResponse:
    return JSONResponse(jsonable_encoder(await svc.deployments.intelligence.patterns.remote()))


@router.get("/api/v1/patterns/clusters", summary="What worked for one alert signature, per cluster and fleet-wide")
async def patterns_by_cluster(
    request: Request, svc: Services, caller: ListPatterns,
    signature: str = Query(min_length=3, max_length=300, description='"{first alert name}:{target kind}"'),
) -> JSONResponse:
    rows = await fleet.outcomes_by_cluster(svc.db.pool, signature)
    return JSONResponse(jsonable_encoder({
        "signature": signature,
        "clusters": [r.model_dump() for r in rows if r.cluster is not None],
        "fleet": [r.model_dump(exclude={"cluster"}) for r in rows if r.cluster is None]}))
