"""Incidents near each other in embedding space: one embedding per incident, stored next to the action taken
and how it worked (kubernaut/storage/incident_embeddings.py)."""

from __future__ import annotations

from typing import Any

import asyncpg

from kubernaut.intelligence.embeddings import Embedder
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of
from kubernaut.storage import incident_embeddings
from kubernaut.storage.incident_embeddings import EmbeddingInputs

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


def incident_description(inputs: EmbeddingInputs) -> str:
    incident = inputs.incident
    facts = inputs.analysis.facts if inputs.analysis is not None else {}
    return describe(incident.signals, incident.target_kind, incident.severity, incident.environment, facts)


async def upsert_incident(pool: asyncpg.Pool, embedder: Embedder, incident_id: int) -> bool:
    """(Re)embed one incident with its latest outcome; False when the incident does not exist."""
    inputs = await incident_embeddings.inputs(pool, incident_id)
    if inputs is None:
        return False
    incident, analysis, outcome = inputs.incident, inputs.analysis, inputs.outcome
    text = incident_description(inputs)
    existing = await incident_embeddings.stored(pool, incident_id)
    action = outcome.action if outcome else (analysis.action if analysis else None)
    verdict = outcome.verdict if outcome else None
    score = outcome.score if outcome else None
    if existing is not None and existing.provider == embedder.name and existing.description == text:
        # Same text: only the outcome may have changed; no need to call the provider again.
        await incident_embeddings.set_outcome(pool, incident_id, action, verdict, score)
        return True
    (vector,) = await embedder.embed([text])
    target = ResourceRef(kind=incident.target_kind, name=incident.target_name, namespace=incident.target_namespace)
    await incident_embeddings.upsert(pool, incident_embeddings.EmbeddingRow(
        incident_id=incident_id, provider=embedder.name, description=text, embedding=vector,
        signature=signature_of(incident.signals, incident.target_kind), target_key=target.key,
        target_kind=incident.target_kind, action=action, verdict=verdict, score=score))
    return True


async def nearest_incidents(pool: asyncpg.Pool, embedder: Embedder, *, incident_id: int | None = None,
                            description: str | None = None, k: int = 5, ef_search: int = 100,
                            min_similarity: float = -1.0) -> list[dict[str, Any]]:
    """Past incidents nearest to an incident (by id) or a description in embedding space, with what was done
    and how it worked. (Not the label overlap of kubernaut.context.history.incidents_sharing_alerts.)"""
    if (incident_id is None) == (description is None):
        raise ValueError("give exactly one of incident_id or description")
    vector = None
    if incident_id is not None:
        stored = await incident_embeddings.stored(pool, incident_id, embedder.name)
        if stored is not None:
            vector = stored.embedding
        else:
            inputs = await incident_embeddings.inputs(pool, incident_id)
            if inputs is None:
                return []
            description = incident_description(inputs)
    if vector is None:
        (vector,) = await embedder.embed([description or ""])
    found = await incident_embeddings.nearest(pool, vector, embedder.name, k, ef_search, exclude=incident_id)
    return [{**n.model_dump(), "similarity": round(float(n.similarity), 4)} for n in found
            if n.similarity is not None and n.similarity >= min_similarity]
