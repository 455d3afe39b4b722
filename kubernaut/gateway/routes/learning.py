"""What Kubernaut learned: effectiveness of executed actions and history per alert signature."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services

router = APIRouter()


@router.get("/api/v1/effectiveness", summary="How executed actions worked")
async def effectiveness(request: Request, svc: Services) -> JSONResponse:
    svc.authorize(request)
    return JSONResponse(jsonable_encoder(await svc.deployments.effectiveness.summary.remote()))


@router.get("/api/v1/patterns", summary="History per alert signature and action")
async def patterns(request: Request, svc: Services) -> JSONResponse:
    svc.authorize(request)
    return JSONResponse(jsonable_encoder(await svc.deployments.intelligence.patterns.remote()))
