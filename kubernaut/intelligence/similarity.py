"""Similar incidents: one embedding per incident, stored next to the action taken and how it worked."""

from __future__ import annotations

from typing import Any

import asyncpg
import numpy as np

from kubernaut.intelligence.embeddings import Embedder
from kubernaut.models.resource import ResourceRef

# Facts that describe the symptoms (analyses.facts, from the Context API); traits describe the workload.
_SYMPTOM_PREFIXES = ("pods.", "workload.", "hpa.", "node.", "pvc.", "quota.", "job.", "network.")
_TRAIT_PREFIX = "traits."


def _symptoms(facts: dict[str, Any]) -> tuple[list[str], list[str]]:
    symptoms, traits = [], []
    for key, value in sorted(facts.items()):
        if key.startswith(_TRAIT_PREFIX):
            if value is True:
                traits.append(key.removeprefix(_TRAIT_PREFIX))
            continue
        if not key.startswith(_SYMPTOM_PREFIXES) or key == "workload.kind":
            continue
        if value is True:
            symptoms.append(key)
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and key.endswith(
                ("restarts", "not_ready")):
            symptoms.append(f"{key}:{'many' if value >= 3 else 'some'}")
    return symptoms, traits


def describe(signals: list[str], target_kind: str, severity: str | None = None, environment: str | None = None,
             facts: dict[str, Any] | None = None) -> str:
    """The structured text that is embedded. Names of objects and namespaces are left out on purpose:
    similar means "the same kind of problem", not "the same workload" (target history covers that)."""
    symptoms, traits = _symptoms(facts or {})
    parts = [f"signal: {', '.join(sorted(set(signals))) or 'unknown'}", f"kind: {target_kind}"]
    if symptoms:
        parts.append(f"symptoms: {', '.join(symptoms)}")
    if traits:
        parts.append(f"traits: {', '.join(traits)}")
    if severity and severity != "unknown":
        parts.append(f"severity: {severity}")
    if environment and environment != "unknown":
        parts.append(f"environment: {environment}")
    return " | ".join(parts)


async def _incident_facts(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> tuple[Any, Any, Any]:
    incident = await conn.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
    # The latest analysis that observed something: a later one made without context must not erase symptoms.
    analysis = await conn.fetchrow(
        "SELECT * FROM analyses WHERE incident_id = $1 ORDER BY (facts <> '{}'::jsonb) DESC, id DESC LIMIT 1",
        incident_id)
    # The outcome that counts: the last final assessment of a live action on this incident.
    outcome = await conn.fetchrow(
        """SELECT action, verdict, score FROM assessments WHERE incident_id = $1 AND status <> 'pending'
           ORDER BY assessed_at DESC NULLS LAST, id DESC LIMIT 1""", incident_id)
    return incident, analysis, outcome


def incident_description(incident: Any, analysis: Any) -> str:
    facts = (dict(analysis).get("facts") if analysis is not None else None) or {}
    return describe(list(incident["signals"] or []), incident["target_kind"], incident["severity"],
                    incident["environment"], facts)


async def upsert_incident(pool: asyncpg.Pool, embedder: Embedder, incident_id: int) -> bool:
    """(Re)embed one incident with its latest outcome; False when the incident does not exist."""
    incident, analysis, outcome = await _incident_facts(pool, incident_id)
    if incident is None:
        return False
    text = incident_description(incident, analysis)
    existing = await pool.fetchrow("SELECT provider, description FROM incident_embeddings WHERE incident_id = $1",
                                   incident_id)
    target = ResourceRef(kind=incident["target_kind"], name=incident["target_name"],
                         namespace=incident["target_namespace"])
    signature = f"{(incident['signals'] or ['unknown'])[0]}:{incident['target_kind']}"
    action = outcome["action"] if outcome else (analysis["action"] if analysis else None)
    verdict = outcome["verdict"] if outcome else None
    score = outcome["score"] if outcome else None
    if existing is not None and existing["provider"] == embedder.name and existing["description"] == text:
        # Same text: only the outcome may have changed; no need to call the provider again.
        await pool.execute(
            """UPDATE incident_embeddings SET action = $2, verdict = $3, score = $4, updated_at = now()
               WHERE incident_id = $1""", incident_id, action, verdict, score)
        return True
    (vector,) = await embedder.embed([text])
    await pool.execute(
        """INSERT INTO incident_embeddings (incident_id, provider, description, embedding, signature, target_key,
                                            target_kind, action, verdict, score)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (incident_id) DO UPDATE SET provider = EXCLUDED.provider, description = EXCLUDED.description,
               embedding = EXCLUDED.embedding, signature = EXCLUDED.signature, target_key = EXCLUDED.target_key,
               target_kind = EXCLUDED.target_kind, action = EXCLUDED.action, verdict = EXCLUDED.verdict,
               score = EXCLUDED.score, updated_at = now()""",
        incident_id, embedder.name, text, vector, signature, target.key, incident["target_kind"], action, verdict,
        score,
    )
    return True


async def search(conn: asyncpg.Connection | asyncpg.Pool, vector: np.ndarray, provider: str, k: int,
                 ef_search: int, exclude: int | None = None) -> list[dict[str, Any]]:
    """Nearest neighbours by cosine distance through the HNSW index, in one round trip
    (``incident_neighbours`` in migration 0005 sets the search breadth for this call only)."""
    rows = await conn.fetch("SELECT * FROM incident_neighbours($1, $2, $3, $4, $5)",
                            vector, provider, exclude if exclude is not None else -1, k, ef_search)
    return [dict(r) for r in rows]


async def similar(pool: asyncpg.Pool, embedder: Embedder, *, incident_id: int | None = None,
                  description: str | None = None, k: int = 5, ef_search: int = 100,
                  min_similarity: float = -1.0) -> list[dict[str, Any]]:
    """Past incidents most like an incident (by id) or a description, with what was done and how it worked."""
    if (incident_id is None) == (description is None):
        raise ValueError("give exactly one of incident_id or description")
    vector = None
    if incident_id is not None:
        stored = await pool.fetchrow(
            "SELECT embedding FROM incident_embeddings WHERE incident_id = $1 AND provider = $2",
            incident_id, embedder.name)
        if stored is not None:
            vector = stored["embedding"].to_numpy() if hasattr(stored["embedding"], "to_numpy") \
                else np.asarray(stored["embedding"], dtype=np.float32)
        else:
            incident, analysis, _ = await _incident_facts(pool, incident_id)
            if incident is None:
                return []
            description = incident_description(incident, analysis)
    if vector is None:
        (vector,) = await embedder.embed([description or ""])
    found = await search(pool, vector, embedder.name, k, ef_search, exclude=incident_id)
    return [{**r, "similarity": round(float(r["similarity"]), 4)} for r in found
            if r["similarity"] is not None and r["similarity"] >= min_similarity]
