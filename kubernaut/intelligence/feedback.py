"""The three ways history feeds back into decisions:

* :func:`evidence_for` — counts and the Wilson lower bound of one (signature, action), for the autonomy gate;
* :func:`ranking` — candidate actions ordered by measured outcomes, for the rule engine;
* :func:`context_for` — past outcomes on this workload and similar incidents, for the analysis.

All read ``action_stats`` plus the final assessments mining has not folded in yet, in one statement
(one snapshot, kubernaut/storage/learning.py), so an outcome counts the moment it is assessed.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from kubernaut.intelligence.embeddings import Embedder
from kubernaut.intelligence.models import ActionEvidence, IncidentContext, RankedAction
from kubernaut.intelligence.similarity import nearest_incidents
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of
from kubernaut.models.stats import wilson_lower_bound
from kubernaut.storage import assessments, incident_embeddings, learning, patterns


def _evidence(signature: str, action: str, counts: learning.OutcomeCounts | None) -> ActionEvidence:
    if counts is None:
        return ActionEvidence(signature=signature, action=action,
                              explanation=f"{action} for {signature}: no assessed execution yet")
    successes, failures = counts.effective, counts.ineffective
    executions = counts.executions
    cases = successes + failures
    bound = wilson_lower_bound(successes, cases)
    rate = successes / cases if cases else None
    mean = counts.score_sum / counts.scored if counts.scored else None
    mttr = counts.recovery_s_sum / counts.recoveries if counts.recoveries else None
    text = (f"{action} for {signature}: {successes}/{cases} effective"
            + (f" ({executions - cases} inconclusive)" if executions > cases else "")
            + f", Wilson lower bound {bound:.2f}" + (f", mean score {mean:.2f}" if mean is not None else "")
            + (f", MTTR {mttr:.0f}s" if mttr is not None else ""))
    return ActionEvidence(signature=signature, action=action, executions=executions, successes=successes,
                          failures=failures, inconclusive=executions - cases, cases=cases, success_rate=rate,
                          lower_bound=bound, mean_score=mean, mttr_s=mttr, last_at=counts.last_at, explanation=text)


async def evidence_many(conn: asyncpg.Pool | asyncpg.Connection, signature: str,
                        actions: list[str] | None = None) -> dict[str, ActionEvidence]:
    """Evidence per action for one signature (all actions with history when ``actions`` is None)."""
    counts = await learning.outcomes(conn, signature, actions)
    names = actions if actions is not None else sorted(counts)
    return {a: _evidence(signature, a, counts.get(a)) for a in names}


async def evidence_for(conn: asyncpg.Pool | asyncpg.Connection, signature: str, action: str) -> ActionEvidence:
    """For the autonomy gate: how often ``action`` was effective for this signature, with the Wilson bound."""
    return (await evidence_many(conn, signature, [action]))[action]


async def _neighbour_outcomes(pool: asyncpg.Pool, incident_id: int, k: int, ef_search: int,
                              min_similarity: float) -> dict[str, tuple[float, float]]:
    stored = await incident_embeddings.stored(pool, incident_id)
    if stored is None:
        return {}
    neighbours = await incident_embeddings.nearest(pool, stored.embedding, stored.provider, k, ef_search,
                                                   exclude=incident_id)
    outcomes: dict[str, tuple[float, float]] = {}
    for n in neighbours:
        if n.action is None or n.verdict not in ("effective", "ineffective") or n.similarity is None \
                or n.similarity < min_similarity:
            continue
        good, bad = outcomes.get(n.action, (0.0, 0.0))
        weight = float(n.similarity)
        outcomes[n.action] = (good + weight, bad) if n.verdict == "effective" else (good, bad + weight)
    return outcomes


async def ranking(pool: asyncpg.Pool, signature: str, candidates: list[str], *, incident_id: int | None = None,
                  priors: dict[str, float] | None = None, prior_cases: float = 2.0, neighbour_weight: float = 0.5,
                  k: int = 10, ef_search: int = 100, min_similarity: float = 0.8) -> list[RankedAction]:
    """Candidates ordered by measured outcomes: an estimate of success pulled towards a prior by
    ``prior_cases`` pseudo-cases, so one failure demotes an action below an untried one and a
    long good record promotes it. The prior of a candidate is ``priors[action]`` (the rule engine's own
    score for it) or 0.5. Ties keep the caller's order (the rule engine's own preference).
    Outcomes of similar past incidents (when ``incident_id`` is embedded) count at ``neighbour_weight``;
    actions mined as harmful (new alerts tend to follow them) are halved."""
    unique = list(dict.fromkeys(candidates))
    evidence = await evidence_many(pool, signature, unique)
    neighbours = await _neighbour_outcomes(pool, incident_id, k, ef_search, min_similarity) \
        if incident_id is not None else {}
    harmful = {action: p.detail for action, p in (await patterns.harmful(pool, unique)).items()}
    scored: list[tuple[float, int, RankedAction]] = []
    for order, action in enumerate(unique):
        ev = evidence[action]
        good, bad = neighbours.get(action, (0.0, 0.0))
        prior = min(max((priors or {}).get(action, 0.5), 0.0), 1.0)
        value = (ev.successes + neighbour_weight * good + prior * prior_cases) / (
            ev.cases + neighbour_weight * (good + bad) + prior_cases) if (ev.cases or good or bad or prior_cases) \
            else prior
        reasons = [ev.explanation]
        if good or bad:
            reasons.append(f"similar incidents: {good:.1f} effective / {bad:.1f} ineffective (similarity-weighted)")
        if action in harmful:
            value *= 0.5
            detail = harmful[action]
            reasons.append(f"new alerts followed {detail.get('followed_by_new_alert')}/{detail.get('executions')} "
                           "executions (harmful side effects): halved")
        scored.append((value, order, RankedAction(action=action, rank=0, value=round(value, 4), evidence=ev,
                                                  similar_successes=round(good, 3), similar_failures=round(bad, 3),
                                                  harmful=action in harmful, reason="; ".join(reasons))))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [r.model_copy(update={"rank": i + 1}) for i, (_, _, r) in enumerate(scored)]


async def context_for(pool: asyncpg.Pool, incident_id: int, embedder: Embedder | None = None, *, k: int = 5,
                      ef_search: int = 100, min_similarity: float = 0.5, history: int = 10) -> IncidentContext | None:
    """What history says about an incident: past outcomes on the same workload, similar incidents and what
    worked for them, the statistics of its signature, and mined patterns that concern it."""
    incident = await learning.learning_incident(pool, incident_id)
    if incident is None:
        return None
    target = ResourceRef(kind=incident.target_kind, name=incident.target_name, namespace=incident.target_namespace)
    signature = signature_of(incident.signals, incident.target_kind)
    past = await assessments.past_outcomes(pool, incident.fingerprint, exclude_incident=incident_id, limit=history)
    target_history = [{**p.model_dump(), "reasons": p.reasons[-1:]} for p in past]
    neighbours = await nearest_incidents(pool, embedder, incident_id=incident_id, k=k, ef_search=ef_search,
                                         min_similarity=min_similarity) if embedder is not None else []
    worked: dict[str, dict[str, Any]] = {}
    for n in neighbours:
        if n["action"] is None:
            continue
        entry = worked.setdefault(n["action"], {"action": n["action"], "effective": 0, "ineffective": 0,
                                                "inconclusive": 0, "incidents": []})
        entry[n["verdict"] if n["verdict"] in ("effective", "ineffective") else "inconclusive"] += 1
        entry["incidents"].append(n["incident_id"])
    stats = list((await evidence_many(pool, signature)).values())
    found = [p.model_dump(exclude={"updated_at"})
             for p in await patterns.concerning(pool, incident.fingerprint, target.key)]

    summary = [e.explanation for e in sorted(stats, key=lambda e: -e.cases) if e.cases][:5]
    for r in target_history[:3]:
        summary.append(f"on this workload: {r['action']} was {r['verdict']} (incident #{r['incident_id']}, "
                       f"{r['action_at']:%Y-%m-%d %H:%M} UTC)")
    for w in sorted(worked.values(), key=lambda w: -(w["effective"] - w["ineffective"]))[:3]:
        summary.append(f"similar incidents: {w['action']} effective {w['effective']}, ineffective "
                       f"{w['ineffective']}")
    for p in found:
        if p["kind"] == "recurring":
            summary.append(f"recurring: {p['count']} incidents of {p['detail'].get('signature')} on this workload")
        elif p["kind"] == "ineffective_chain":
            summary.append(f"ineffective chain: {p['count']} ineffective remediations in a row on this workload")
        else:
            summary.append(f"oscillation on this workload: {p['detail'].get('actions')}")
    return IncidentContext(incident_id=incident_id, signature=signature, target_key=target.key,
                           target_history=target_history, similar=neighbours, what_worked=list(worked.values()),
                           action_stats=stats, patterns=found, summary=summary)
