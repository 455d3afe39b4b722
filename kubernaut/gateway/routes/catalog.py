"""The action catalog."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services, requires

router = APIRouter()

ListActions = requires("list", "actions")


@router.get("/api/v1/actions", summary="The action catalog with JSON schemas of parameters")
async def actions(request: Request, svc: Services, caller: ListActions) -> JSONResponse:
    return JSONResponse(jsonable_encoder({"actions": await svc.deployments.executor.catalog.remote()}))
