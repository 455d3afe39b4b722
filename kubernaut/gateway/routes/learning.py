"""What Kubernaut learned: effectiveness of executed actions and history per alert signature."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services, requires

router = APIRouter()

GetEffectiveness = requires("get", "effectiveness")
ListPatterns = requires("list", "patterns")


@router.get("/api/v1/effectiveness", summary="How executed actions worked")
async def effectiveness(request: Request, svc: Services, caller: GetEffectiveness) -> JSONResponse:
    return JSONResponse(jsonable_encoder(await svc.deployments.effectiveness.summary.remote()))


@router.get("/api/v1/patterns", summary="History per alert signature and action")
async def patterns(request: Request, svc: Services, caller: ListPatterns) -> JSONResponse:
    return JSONResponse(jsonable_encoder(await svc.deployments.intelligence.patterns.remote()))
