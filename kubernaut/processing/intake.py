"""Alerts → incidents for a batch of committed alerts, in one transaction.

Batching is what lets processing keep up with a storm on two cores: alerts about one workload are
folded into a single incident upsert, and all alert rows are marked processed in one statement.
Decisions are still recorded per alert.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from kubernaut.config.settings import FilterRule, ProcessingConfig
from kubernaut.models.jobs import IncidentRef, JobKind
from kubernaut.models.signal import Classification, Signal, TargetResolution
from kubernaut.processing import filters
from kubernaut.processing.classification import SEVERITY_RANK, normalize_severity
from kubernaut.storage import alerts, audit, incidents, jobs, notifications

logger = logging.getLogger(__name__)

_PRIORITY_RANK = {"P3": 0, "P2": 1, "P1": 2, "P0": 3}


@dataclass
class Enriched:
    signal: Signal
    resolution: TargetResolution
    classification: Classification
    request_id: str
    # The fleet does not know the alert's cluster: the incident is stored and shown, a human is told, and
    # nothing is analysed or acted on (no other cluster's client may stand in for it).
    unknown_cluster: str | None = None


@dataclass
class BatchOutcome:
    incident_by_alert: dict[int, int | None] = field(default_factory=dict)
    opened: list[int] = field(default_factory=list)
    reanalyze: list[int] = field(default_factory=list)
    notified: bool = False


def _decision(item: Enriched, why: str) -> dict[str, Any]:
    decision = {"filter": why, "target": item.resolution.target.model_dump(), "target_source": item.resolution.source,
                "chain": item.resolution.chain, "classification": item.classification.model_dump()}
    if item.unknown_cluster is not None:
        decision["unknown_cluster"] = item.unknown_cluster
    return decision


async def _escalate_unknown_cluster(conn: asyncpg.Connection, incident_id: int, item: Enriched,
                                   audit_events: list[tuple[str, int, dict[str, Any]]]) -> None:
    await incidents.set_phase(conn, incident_id, "escalated")
    audit_events.append(("incident.escalated", incident_id, {
        "alert_id": item.signal.alert_id, "alertname": item.signal.alertname, "cluster": item.signal.cluster,
        "reason": item.unknown_cluster}))
    await notifications.create(
        conn, incident_id, "incident.escalated",
        title=f"[unknown cluster] {item.signal.alertname} on {item.resolution.target}",
        body=(f"Incident #{incident_id} comes from cluster {item.signal.cluster!r}, which Kubernaut does not manage "
              f"({item.unknown_cluster}). Nothing is analysed or changed: a human must look at it."),
        severity="warning",
    )


async def process_batch(conn: asyncpg.Connection, items: list[Enriched], rules: list[FilterRule],
                        config: ProcessingConfig) -> BatchOutcome:
    """Caller holds the alert rows locked (FOR UPDATE) inside ``conn``'s transaction."""
    outcome = BatchOutcome()
    decisions: dict[int, dict[str, Any]] = {}
    firing: dict[str, list[Enriched]] = {}
    resolved: list[Enriched] = []
    for item in items:
        keep, why = filters.decide(rules, item.signal, normalize_severity(item.signal.raw_severity)[0])
        decisions[item.signal.alert_id] = _decision(item, why)
        if not keep:
            decisions[item.signal.alert_id]["outcome"] = "filtered out"
            outcome.incident_by_alert[item.signal.alert_id] = None
        elif item.signal.status == "firing":
            firing.setdefault(item.resolution.fingerprint, []).append(item)
        else:
            resolved.append(item)

    # Lock order, the same in every transaction that touches incidents: incident rows by fingerprint (one
    # pass for firing and resolved alerts), then the audit chain lock at the very end. Two batches (the
    # gateway's call and the sweeper, or two replicas) then wait for each other instead of deadlocking.
    touched: set[int] = set()
    resolving: dict[int, Enriched] = {}
    resolved_by_fp: dict[str, list[Enriched]] = {}
    for item in resolved:
        resolved_by_fp.setdefault(item.resolution.fingerprint, []).append(item)
    audit_events: list[tuple[str, int, dict[str, Any]]] = []
    for fingerprint in sorted(firing.keys() | resolved_by_fp.keys()):
        group = firing.get(fingerprint, [])
        if group:
            names = list(dict.fromkeys(i.signal.alertname for i in group))
            strongest = max(group, key=lambda i: (_PRIORITY_RANK[i.classification.priority],
                                                  SEVERITY_RANK[i.classification.severity]))
            known = await incidents.open_signals(conn, fingerprint)
            incident_id, opened = await incidents.join_or_open(
                conn, strongest.resolution, strongest.classification, names, max(i.signal.starts_at for i in group),
                count=len(group), cluster=strongest.signal.cluster,
            )
            touched.add(incident_id)
            first = group[0]
            for i in group:
                decisions[i.signal.alert_id]["outcome"] = "opened incident" if opened and i is first \
                    else "joined open incident"
                outcome.incident_by_alert[i.signal.alert_id] = incident_id
            if opened and first.unknown_cluster is not None:
                await _escalate_unknown_cluster(conn, incident_id, first, audit_events)
                outcome.opened.append(incident_id)
                outcome.notified = True
            elif first.unknown_cluster is not None:
                pass  # joined an escalated incident of an unknown cluster: still nothing to analyse
            elif opened:
                await jobs.enqueue(conn, JobKind.ANALYZE, IncidentRef(incident_id=incident_id))
                audit_events.append(("incident.opened", incident_id, {
                    "alert_id": first.signal.alert_id, "alertname": first.signal.alertname,
                    "target": str(first.resolution.target), "target_source": first.resolution.source,
                    "alerts_in_batch": len(group)}))
                outcome.opened.append(incident_id)
            elif config.reanalyze_on_new_signal and known is not None and set(names) - set(known):
                await jobs.requeue(conn, JobKind.ANALYZE, IncidentRef(incident_id=incident_id))
                audit_events.append(("incident.reanalysis", incident_id,
                                     {"new_signals": sorted(set(names) - set(known))}))
                for i in group:
                    decisions[i.signal.alert_id]["outcome"] += " (new signal: re-analysis)"
                outcome.reanalyze.append(incident_id)
        for item in resolved_by_fp.get(fingerprint, []):
            incident_id = await incidents.open_incident_for(conn, item.resolution.fingerprint)
            if incident_id is None:
                incident_id = await incidents.latest_incident_for(conn, item.resolution.fingerprint)
                decisions[item.signal.alert_id]["outcome"] = "resolved alert without an open incident"
            else:
                decisions[item.signal.alert_id]["outcome"] = "resolved alert joined open incident"
                resolving[incident_id] = item
            outcome.incident_by_alert[item.signal.alert_id] = incident_id

    ids = [i.signal.alert_id for i in items]
    await alerts.mark_processed(conn, [(i, outcome.incident_by_alert.get(i), decisions[i]) for i in ids])
    resolved_now: list[tuple[int, Enriched]] = []
    members: dict[int, list[Enriched]] = {}
    for item in items:
        incident_id = outcome.incident_by_alert.get(item.signal.alert_id)
        if incident_id is not None:
            members.setdefault(incident_id, []).append(item)
    for incident_id in sorted(touched | set(resolving)):  # rows this transaction holds already
        group = members.get(incident_id, [])
        still_firing = await incidents.refresh_firing(
            conn, incident_id, sorted({i.signal.am_fingerprint for i in group}), [i.signal.alert_id for i in group])
        item = resolving.get(incident_id)
        if item is not None and still_firing == 0:
            audit_events.append(("incident.resolved", incident_id, {"alert_id": item.signal.alert_id}))
            resolved_now.append((incident_id, item))
    for incident_id, item in resolved_now:
        await notifications.create(
            conn, incident_id, "incident.resolved",
            title=f"[resolved] {item.signal.alertname} on {item.resolution.target}",
            body=f"All alerts of incident #{incident_id} on {item.resolution.target} are resolved.",
            severity="success",
        )
        outcome.notified = True
    await audit.append_many(conn, "processor", audit_events)
    for item in items:
        logger.debug("request_id=%s alert_id=%s %s %s → incident %s (%s via %s)", item.request_id,
                     item.signal.alert_id, item.signal.alertname, item.signal.status,
                     outcome.incident_by_alert.get(item.signal.alert_id), decisions[item.signal.alert_id]["outcome"],
                     item.resolution.source)
    logger.info("processed %d alerts (request_ids=%s): %d incidents touched, %d opened", len(items),
                ",".join(sorted({i.request_id for i in items})[:5]), len(touched | set(resolving)),
                len(outcome.opened))
    return outcome
