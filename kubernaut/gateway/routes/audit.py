"""The audit trail's integrity."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services
from kubernaut.storage import audit as audit_store

router = APIRouter()


@router.get("/api/v1/audit/verify", summary="Recompute the audit hash chain; names the first tampered event")
async def verify_audit(request: Request, svc: Services) -> JSONResponse:
    svc.authorize(request)
    # Batches from the pool: constant memory, no connection held for the whole trail.
    intact, first_bad, events = await audit_store.verify(svc.db.pool)
    return JSONResponse({"intact": intact, "first_bad_event_id": first_bad, "events": events},
                        status_code=200 if intact else 409)
