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
from kubernaut.storage import alerts as alert_store
from kubernaut.storage import analyses, audit, incidents

_MAX_ALERTS = 5


async def record(pool: asyncpg.Pool, holmes: HolmesClient, context: ContextProvider | None,
                 analysis_id: int) -> SecondOpinion | None:
    """Ask HolmesGPT about the analysis's incident and store the answer (or why there is none)."""
    slot = await analyses.second_opinion_slot(pool, analysis_id)
    if slot is None:
        return None
    if slot.second_opinion is not None:
        return SecondOpinion.model_validate(slot.second_opinion)  # a re-run after a crash: asked already
    incident = await incidents.subject(pool, slot.incident_id)
    if incident is None:
        return None
    alerts: list[dict[str, Any]] = []
    for alert in await alert_store.of_incident(pool, incident.id, limit=_MAX_ALERTS):
        annotations = alert.annotations if isinstance(alert.annotations, dict) else {}
        alerts.append({"name": alert.alertname, "summary": annotations.get("summary"),
                       "description": annotations.get("description")})
    ctx = await context.context_for(incident.target, signals=incident.signals, history_limit=0) \
        if context is not None else ResourceContext(target=incident.target, reason="no context provider")
    opinion = await holmes.second_opinion(incident.target, incident.signals, holmes_summary(ctx, alerts))
    async with pool.acquire() as conn, conn.transaction():
        if await analyses.store_second_opinion(conn, analysis_id, opinion.model_dump(mode="json")):
            await audit.append(conn, "analysis", "analysis.second_opinion", incident.id, {
                "analysis_id": analysis_id, "source": opinion.source, "available": opinion.available,
                "error": opinion.error, "latency_ms": opinion.latency_ms, "chars": len(opinion.analysis)})
    return opinion
