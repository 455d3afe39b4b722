"""The audit trail's integrity."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from kubernaut.gateway.services import Services, requires
from kubernaut.storage import audit as audit_store

router = APIRouter()

GetAudit = requires("get", "audit")


@router.get("/api/v1/audit/verify", summary="Recompute the audit hash chain; names the first tampered event")
async def verify_audit(
    request: Request, svc: Services, caller: GetAudit,
    anchor_seq: int | None = Query(default=None, ge=1, description="an anchored head kept outside (log, metric)"),
    anchor_hash: str | None = Query(default=None, pattern="^[0-9a-f]{64}$"),
) -> JSONResponse:
    if (anchor_seq is None) != (anchor_hash is None):
        raise HTTPException(status_code=422, detail="anchor_seq and anchor_hash go together")
    anchor = audit_store.Anchor(seq=anchor_seq, hash=anchor_hash) if anchor_seq and anchor_hash else None
    # Batches from the pool: constant memory, no connection held for the whole trail. Without an anchor in
    # the request, the last line of storage.audit.anchor_path (if set) is the anchor.
    report = await audit_store.verify_report(svc.db.pool, anchor=anchor)
    body = report.model_dump(mode="json")
    separation = svc.db.role_separation
    body["role_separation"] = separation.model_dump(mode="json") if separation is not None else None
    return JSONResponse(body, status_code=200 if report.intact else 409)
