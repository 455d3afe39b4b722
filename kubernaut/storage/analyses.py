"""Analyses: one row per decided analysis of an incident (the newest is the one in force), with its second opinion."""

from __future__ import annotations

from datetime import datetime

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from kubernaut.models.analysis import AnalysisResult


class AnalysisStamp(BaseModel):
    """Which analysis of an incident is the newest and when it was made."""

    model_config = ConfigDict(frozen=True)

    id: int
    created_at: datetime


class SecondOpinionSlot(BaseModel):
    """An analysis and the second opinion stored with it (None: not asked yet)."""

    model_config = ConfigDict(frozen=True)

    id: int
    incident_id: int
    second_opinion: JsonValue


async def latest(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> AnalysisStamp | None:
    row = await conn.fetchrow(
        "SELECT id, created_at FROM analyses WHERE incident_id = $1 ORDER BY id DESC LIMIT 1", incident_id)
    return None if row is None else AnalysisStamp(id=row["id"], created_at=row["created_at"])


async def insert(conn: asyncpg.Connection, incident_id: int, result: AnalysisResult, latency_ms: float) -> int:
    """Store a decided analysis; returns its id."""
    llm = result.llm
    return await conn.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause,
                                 alternatives, rule_id, reasoning, fallback_reason, latency_ms,
                                 llm_provider, llm_model, llm_calls, prompt_tokens, completion_tokens,
                                 llm_latency_ms, cost_usd, llm, flags, facts, findings, justified_by)
           VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24)
           RETURNING id""",
        incident_id, result.engine, result.action, result.parameters, result.target.model_dump(),
        result.confidence, result.root_cause, [a.model_dump() for a in result.alternatives], result.rule_id,
        result.reasoning, result.fallback_reason, latency_ms,
        llm.provider if llm else None, llm.model if llm else None, llm.calls if llm else None,
        llm.prompt_tokens if llm else None, llm.completion_tokens if llm else None,
        llm.latency_ms if llm else None, llm.cost_usd if llm else None,
        llm.model_dump(mode="json") if llm else None, result.flags, result.facts,
        [f.model_dump(mode="json") for f in result.findings], result.justified_by,
    )


async def second_opinion_slot(conn: asyncpg.Connection | asyncpg.Pool, analysis_id: int) -> SecondOpinionSlot | None:
    row = await conn.fetchrow("SELECT id, incident_id, second_opinion FROM analyses WHERE id = $1", analysis_id)
    return None if row is None else SecondOpinionSlot.model_validate(dict(row))


async def store_second_opinion(conn: asyncpg.Connection, analysis_id: int, opinion: JsonValue) -> bool:
    """Store the second opinion unless one is stored already; whether this call stored it."""
    stored = await conn.fetchval(
        "UPDATE analyses SET second_opinion = $2 WHERE id = $1 AND second_opinion IS NULL RETURNING id",
        analysis_id, opinion)
    return stored is not None
