"""A second opinion on each new analysis from an optional HolmesGPT server (``holmes.in_analysis``).

It runs as its own durable job after the analysis is committed, so a slow or absent HolmesGPT never
delays a remediation; what it says is stored next to the analysis as text for humans and is never
read by a decision (it could repeat instructions planted in alert text or logs).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from kubernaut.context.holmes import HolmesClient, SecondOpinion, holmes_summary
from kubernaut.context.models import ResourceContext
from kubernaut.context.provider import ContextProvider
from kubernaut.models.resource import ResourceRef
from kubernaut.storage import audit

JOB = "second_opinion"
_MAX_ALERTS = 5


async def record(pool: asyncpg.Pool, holmes: HolmesClient, context: ContextProvider | None,
                 analysis_id: int) -> SecondOpinion | None:
    """Ask HolmesGPT about the analysis's incident and store the answer (or why there is none)."""
    analysis = await pool.fetchrow("SELECT id, incident_id, second_opinion FROM analyses WHERE id = $1",
                                   analysis_id)
    if analysis is None:
        return None
    if analysis["second_opinion"] is not None:
        return SecondOpinion.model_validate(analysis["second_opinion"])  # a re-run after a crash: asked already
    incident = await pool.fetchrow("SELECT * FROM incidents WHERE id = $1", analysis["incident_id"])
    target = ResourceRef(kind=incident["target_kind"], name=incident["target_name"],
                         namespace=incident["target_namespace"])
    signals = list(incident["signals"] or [])
    rows = await pool.fetch(
        "SELECT alertname, annotations FROM alerts WHERE incident_id = $1 ORDER BY id LIMIT $2",
        incident["id"], _MAX_ALERTS)
    alerts: list[dict[str, Any]] = [
        {"name": r["alertname"], "summary": (r["annotations"] or {}).get("summary"),
         "description": (r["annotations"] or {}).get("description")} for r in rows]
    ctx = await context.context_for(target, signals=signals, history_limit=0) if context is not None \
        else ResourceContext(target=target, reason="no context provider")
    opinion = await holmes.second_opinion(target, signals, holmes_summary(ctx, alerts))
    async with pool.acquire() as conn, conn.transaction():
        stored = await conn.fetchval(
            "UPDATE analyses SET second_opinion = $2 WHERE id = $1 AND second_opinion IS NULL RETURNING id",
            analysis_id, opinion.model_dump(mode="json"))
        if stored is not None:
            await audit.append(conn, "analysis", "analysis.second_opinion", incident["id"], {
                "analysis_id": analysis_id, "source": opinion.source, "available": opinion.available,
                "error": opinion.error, "latency_ms": opinion.latency_ms, "chars": len(opinion.analysis)})
    return opinion
