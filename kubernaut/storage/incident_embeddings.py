"""One embedding per incident (``incident_embeddings``), stored next to the action taken and how it worked,
and the nearest-neighbour search over them (``incident_neighbours`` in migration 0005)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import numpy as np
from pydantic import BaseModel, ConfigDict, JsonValue, field_validator

from kubernaut.storage.learning import LearningIncident, learning_incident


class AnalysisFacts(BaseModel):
    """What an analysis of the incident observed, and the action it chose."""

    model_config = ConfigDict(frozen=True)

    action: str | None
    facts: dict[str, JsonValue]


class Outcome(BaseModel):
    """The last final assessment of a live action on the incident."""

    model_config = ConfigDict(frozen=True)

    action: str
    verdict: str | None
    score: float | None


class EmbeddingInputs(BaseModel):
    """What an incident's description is computed from."""

    model_config = ConfigDict(frozen=True)

    incident: LearningIncident
    analysis: AnalysisFacts | None
    outcome: Outcome | None


class StoredEmbedding(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    provider: str
    description: str
    embedding: np.ndarray

    @field_validator("embedding", mode="before")
    @classmethod
    def _as_array(cls, value: object) -> np.ndarray:
        to_numpy = getattr(value, "to_numpy", None)
        return np.asarray(to_numpy() if to_numpy is not None else value, dtype=np.float32)


class Neighbour(BaseModel):
    """A past incident near the query, with what was done about it and how it worked."""

    model_config = ConfigDict(frozen=True)

    incident_id: int
    similarity: float | None
    description: str
    signature: str
    target_key: str
    action: str | None
    verdict: str | None
    score: float | None
    incident_status: str | None
    first_seen: datetime | None
    resolved_at: datetime | None


class EmbeddingRow(BaseModel):
    """One row to write: the description, its vector, and the incident's outcome so far."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    incident_id: int
    provider: str
    description: str
    embedding: np.ndarray
    signature: str
    target_key: str
    target_kind: str
    action: str | None
    verdict: str | None
    score: float | None


class PendingIncident(BaseModel):
    """An incident the embedding sweep has not reached yet."""

    model_config = ConfigDict(frozen=True)

    id: int
    settled: bool  # old enough that its analysis is no longer awaited
    analysed: bool


async def inputs(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> EmbeddingInputs | None:
    """The incident, its latest analysis that observed something, and its outcome; None without the incident."""
    incident = await learning_incident(conn, incident_id)
    if incident is None:
        return None
    # The latest analysis that observed something: a later one made without context must not erase symptoms.
    analysis = await conn.fetchrow(
        "SELECT action, facts FROM analyses WHERE incident_id = $1 "
        "ORDER BY (facts <> '{}'::jsonb) DESC, id DESC LIMIT 1", incident_id)
    # The outcome that counts: the last final assessment of a live action on this incident.
    outcome = await conn.fetchrow(
        """SELECT action, verdict, score FROM assessments WHERE incident_id = $1 AND status <> 'pending'
           ORDER BY assessed_at DESC NULLS LAST, id DESC LIMIT 1""", incident_id)
    return EmbeddingInputs(
        incident=incident,
        analysis=AnalysisFacts(action=analysis["action"], facts=analysis["facts"] or {}) if analysis else None,
        outcome=Outcome.model_validate(dict(outcome)) if outcome else None)


async def stored(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int,
                 provider: str | None = None) -> StoredEmbedding | None:
    """The stored embedding of an incident (only one made by ``provider`` when given)."""
    row = await conn.fetchrow(
        "SELECT provider, description, embedding FROM incident_embeddings "
        "WHERE incident_id = $1 AND ($2::text IS NULL OR provider = $2)", incident_id, provider)
    return StoredEmbedding.model_validate(dict(row)) if row is not None else None


async def set_outcome(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, action: str | None,
                      verdict: str | None, score: float | None) -> None:
    """Same description, new outcome: the vector stays."""
    await conn.execute(
        """UPDATE incident_embeddings SET action = $2, verdict = $3, score = $4, updated_at = now()
           WHERE incident_id = $1""", incident_id, action, verdict, score)


async def upsert(conn: asyncpg.Connection | asyncpg.Pool, row: EmbeddingRow) -> None:
    await conn.execute(
        """INSERT INTO incident_embeddings (incident_id, provider, description, embedding, signature, target_key,
                                            target_kind, action, verdict, score)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (incident_id) DO UPDATE SET provider = EXCLUDED.provider, description = EXCLUDED.description,
               embedding = EXCLUDED.embedding, signature = EXCLUDED.signature, target_key = EXCLUDED.target_key,
               target_kind = EXCLUDED.target_kind, action = EXCLUDED.action, verdict = EXCLUDED.verdict,
               score = EXCLUDED.score, updated_at = now()""",
        row.incident_id, row.provider, row.description, row.embedding, row.signature, row.target_key,
        row.target_kind, row.action, row.verdict, row.score,
    )


async def nearest(conn: asyncpg.Connection | asyncpg.Pool, vector: np.ndarray, provider: str, k: int,
                  ef_search: int, exclude: int | None = None) -> list[Neighbour]:
    """Nearest neighbours by cosine distance through the HNSW index, in one round trip
    (``incident_neighbours`` in migration 0005 sets the search breadth for this call only)."""
    rows = await conn.fetch("SELECT * FROM incident_neighbours($1, $2, $3, $4, $5)",
                            vector, provider, exclude if exclude is not None else -1, k, ef_search)
    return [Neighbour.model_validate(dict(r)) for r in rows]


async def pending(conn: asyncpg.Connection, after: int, limit: int, settle_s: float) -> list[PendingIncident]:
    """Incidents past ``after`` in id order, with whether each is analysed or old enough to embed anyway."""
    rows = await conn.fetch(
        """SELECT i.id, i.created_at < now() - make_interval(secs => $3) AS settled,
                  EXISTS (SELECT 1 FROM analyses a WHERE a.incident_id = i.id) AS analysed
           FROM incidents i WHERE i.id > $1 ORDER BY i.id LIMIT $2""",
        after, limit, settle_s)
    return [PendingIncident.model_validate(dict(r)) for r in rows]


async def count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM incident_embeddings"))
