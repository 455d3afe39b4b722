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
from kubernaut.intelligence.models import ActionEvidence, ClusterScope, IncidentContext, RankedAction
from kubernaut.intelligence.similarity import nearest_incidents
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of
from kubernaut.models.stats import wilson_lower_bound
from kubernaut.storage import assessments, fleet, incident_embeddings, learning, patterns


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


def _fleet_prior(ev: ActionEvidence, own: learning.OutcomeCounts | None, total: learning.OutcomeCounts | None,
                 prior_cases: float) -> ActionEvidence:
    """The cluster's own evidence with the other clusters' record as a prior of at most ``prior_cases`` cases."""
    own_good, own_bad = (own.effective, own.ineffective) if own is not None else (0, 0)
    good = (total.effective if total is not None else 0) - own_good
    bad = (total.ineffective if total is not None else 0) - own_bad
    if good + bad <= 0 or prior_cases <= 0:
        return ev
    weight = min(prior_cases, good + bad)
    fleet_good, fleet_cases = weight * good / (good + bad), weight
    bound = wilson_lower_bound(ev.successes + fleet_good, ev.cases + fleet_cases)
    return ev.model_copy(update={
        "fleet_successes": round(fleet_good, 4), "fleet_cases": round(fleet_cases, 4), "lower_bound": bound,
        "explanation": f"{ev.explanation}; other clusters: {good}/{good + bad} effective, weighed as "
                       f"{fleet_cases:.1f} case(s), lower bound with them {bound:.2f}"})


async def evidence_many(conn: asyncpg.Pool | asyncpg.Connection, signature: str,
                        actions: list[str] | None = None, scope: ClusterScope | None = None
                        ) -> dict[str, ActionEvidence]:
    """Evidence per action for one signature (all actions with history when ``actions`` is None). With a
    ``scope`` (a fleet), the counts are the scope's cluster's and the rest of the fleet is a weaker prior;
    without one (a single cluster), every outcome is the cluster's own."""
    counts = await learning.outcomes(conn, signature, actions)
    if scope is None:
        names = actions if actions is not None else sorted(counts)
        return {a: _evidence(signature, a, counts.get(a)) for a in names}
    own = await fleet.cluster_outcomes(conn, signature, actions, scope.cluster, scope.home)
    names = actions if actions is not None else sorted(counts)
    return {a: _fleet_prior(_evidence(signature, a, own.get(a)), own.get(a), counts.get(a), scope.prior_cases)
            for a in names}


async def evidence_for(conn: asyncpg.Pool | asyncpg.Connection, signature: str, action: str,
                       scope: ClusterScope | None = None) -> ActionEvidence:
    """For the autonomy gate: how often ``action`` was effective for this signature, with the Wilson bound."""
    return (await evidence_many(conn, signature, [action], scope))[action]


async def scope_of(conn: asyncpg.Pool | asyncpg.Connection, incident_id: int | None, home: str, multi: bool,
                   prior_cases: float) -> ClusterScope | None:
    """The learning scope of an incident in a fleet (``multi``); None on a single cluster or with no incident."""
    if not multi or incident_id is None:
        return None
    incident = await learning.learning_incident(conn, incident_id)
    if incident is None:
        return None
    return ClusterScope(cluster=incident.cluster or home, home=home, prior_cases=prior_cases)


async def _neighbour_outcomes(pool: asyncpg.Pool, incident_id: int, k: int, ef_search: int,
                              min_similarity: float, scope: ClusterScope | None = None
                              ) -> dict[str, tuple[float, float]]:
    stored = await incident_embeddings.stored(pool, incident_id)
    if stored is None:
        return {}
    neighbours = await incident_embeddings.nearest(pool, stored.embedding, stored.provider, k, ef_search,
                                                   exclude=incident_id)
    if scope is not None and neighbours:
        # In a fleet, similar incidents count only on the incident's own cluster: the other clusters' outcomes
        # are the prior of the evidence already, and must not count again at neighbour weight.
        clusters = await fleet.clusters_of(pool, [n.incident_id for n in neighbours], scope.home)
        neighbours = [n for n in neighbours if clusters.get(n.incident_id) == scope.cluster]
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
                  k: int = 10, ef_search: int = 100, min_similarity: float = 0.8,
                  scope: ClusterScope | None = None) -> list[RankedAction]:
    """Candidates ordered by measured outcomes: an estimate of success pulled towards a prior by
    ``prior_cases`` pseudo-cases, so one failure demotes an action below an untried one and a
    long good record promotes it. The prior of a candidate is ``priors[action]`` (the rule engine's own
    score for it) or 0.5. Ties keep the caller's order (the rule engine's own preference).
    Outcomes of similar past incidents (when ``incident_id`` is embedded) count at ``neighbour_weight``;
    actions mined as harmful (new alerts tend to follow them) are halved. With a ``scope`` (a fleet) the
    measured outcomes are the scope's cluster's, the other clusters' record a prior of a few cases."""
    unique = list(dict.fromkeys(candidates))
    evidence = await evidence_many(pool, signature, unique, scope)
    neighbours = await _neighbour_outcomes(pool, incident_id, k, ef_search, min_similarity, scope) \
        if incident_id is not None else {}
    harmful = {action: p.detail for action, p in (await patterns.harmful(pool, unique)).items()}
    scored: list[tuple[float, int, RankedAction]] = []
    for order, action in enumerate(unique):
        ev = evidence[action]
        good, bad = neighbours.get(action, (0.0, 0.0))
        prior = min(max((priors or {}).get(action, 0.5), 0.0), 1.0)
        value = (ev.successes + ev.fleet_successes + neighbour_weight * good + prior * prior_cases) / (
            ev.cases + ev.fleet_cases + neighbour_weight * (good + bad) + prior_cases) \
            if (ev.cases or ev.fleet_cases or good or bad or prior_cases) else prior
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
