"""Assessments: one row per executed live action (``assessments``), the only state of the ``assess`` job.

The row is created with the action's facts, gets a baseline right after the action, counts failed
attempts while sources are unavailable, and is finalized once (``pending`` → ``done``/``expired``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, JsonValue

from kubernaut.storage.learning import enqueue_outcome

AssessmentStatus = Literal["pending", "done", "expired"]


class ActionState(BaseModel):
    """What decides whether an action is assessed at all."""

    model_config = ConfigDict(frozen=True)

    id: int
    action: str
    dry_run: bool
    status: str
    # A proposed change (GitOps propose mode): the dry-run of the action carried into Git, and when the cluster
    # took the merged change (the workflow's ``synced`` step naming this action); None for everything else.
    synced_at: datetime | None = None


class ActionToAssess(ActionState):
    """An action with its incident's target and signals and its workflow's signature."""

    incident_id: int | None
    workflow_id: int | None
    target: dict[str, JsonValue]
    created_at: datetime
    finished_at: datetime | None
    signals: list[str] | None
    incident_kind: str | None
    incident_name: str | None
    incident_namespace: str | None
    workflow_signature: str | None
    cluster: str | None = None  # the action's cluster (fleet); None: the home cluster


class NewAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    action_id: int
    incident_id: int | None
    workflow_id: int | None
    action: str
    target: dict[str, JsonValue]
    target_key: str
    target_kind: str
    signature: str
    alertname: str
    action_at: datetime
    due_at: datetime
    expires_at: datetime


class Assessment(NewAssessment):
    """A stored assessment: what was scheduled (``NewAssessment``) and what has been measured since."""

    id: int
    status: AssessmentStatus
    verdict: str | None
    score: float | None
    health: float | None
    alert: float | None
    metrics: float | None
    drift: bool | None
    components: dict[str, JsonValue]
    reasons: list[str]
    baseline: dict[str, JsonValue] | None
    attempts: int
    last_error: str | None
    assessed_at: datetime | None
    recovered_at: datetime | None


class FinalAssessment(BaseModel):
    """What is measured, stored once when the assessment ends."""

    model_config = ConfigDict(frozen=True)

    status: AssessmentStatus
    verdict: str
    score: float | None
    health: float | None
    alert: float | None
    metrics: float | None
    drift: bool | None
    components: dict[str, JsonValue]
    reasons: list[str]
    recovered_at: datetime | None


class IncidentAlert(BaseModel):
    """An alert of the incident as last seen in a webhook."""

    model_config = ConfigDict(frozen=True)

    am_fingerprint: str
    alertname: str
    labels: dict[str, str]
    status: str
    received_at: datetime


class PastOutcome(BaseModel):
    """A final assessment of an earlier incident of the same workload."""

    model_config = ConfigDict(frozen=True)

    incident_id: int | None
    action: str
    verdict: str | None
    score: float | None
    action_at: datetime
    signature: str
    reasons: list[str]


class ActionTotals(BaseModel):
    model_config = ConfigDict(frozen=True)

    executed: int
    simulated: int


class PerAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: str
    assessed: int
    effective: int
    ineffective: int
    inconclusive: int
    mean_score: float | None


_COLUMNS = ", ".join(Assessment.model_fields)


async def action_to_assess(conn: asyncpg.Connection | asyncpg.Pool, action_id: int) -> ActionToAssess | None:
    row = await conn.fetchrow(
        """SELECT x.id, x.incident_id, x.workflow_id, x.action, x.target, x.dry_run, x.status, x.created_at,
                  x.finished_at, i.signals, i.target_kind AS incident_kind, i.target_name AS incident_name,
                  i.target_namespace AS incident_namespace, w.signature AS workflow_signature, x.cluster,
                  (SELECT s.finished_at FROM workflow_steps s WHERE s.workflow_id = x.workflow_id
                     AND s.name = 'synced' AND s.status = 'succeeded'
                     AND s.detail->>'proposed_action_id' = x.id::text) AS synced_at
           FROM actions x LEFT JOIN incidents i ON i.id = x.incident_id
           LEFT JOIN workflows w ON w.id = x.workflow_id WHERE x.id = $1""",
        action_id,
    )
    return ActionToAssess.model_validate(dict(row)) if row is not None else None


async def action_state(conn: asyncpg.Connection | asyncpg.Pool, action_id: int) -> ActionState | None:
    row = await conn.fetchrow("SELECT id, action, dry_run, status FROM actions WHERE id = $1", action_id)
    return ActionState.model_validate(dict(row)) if row is not None else None


async def create(conn: asyncpg.Connection | asyncpg.Pool, new: NewAssessment) -> Assessment:
    """The assessment of the action: created now, or the one that exists already (any replica, any run)."""
    await conn.execute(
        """INSERT INTO assessments (action_id, incident_id, workflow_id, action, target, target_key, target_kind,
                                    signature, alertname, action_at, due_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (action_id) DO NOTHING""",
        new.action_id, new.incident_id, new.workflow_id, new.action, new.target, new.target_key, new.target_kind,
        new.signature, new.alertname, new.action_at, new.due_at, new.expires_at,
    )
    found = await by_action(conn, new.action_id)
    if found is None:  # deleted between the two statements (retention): nothing to assess any more
        raise LookupError(f"the assessment of action {new.action_id} is gone")
    return found


async def by_action(conn: asyncpg.Connection | asyncpg.Pool, action_id: int) -> Assessment | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM assessments WHERE action_id = $1", action_id)
    return Assessment.model_validate(dict(row)) if row is not None else None


async def latest(conn: asyncpg.Connection | asyncpg.Pool, limit: int) -> list[Assessment]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM assessments ORDER BY id DESC LIMIT $1", limit)
    return [Assessment.model_validate(dict(r)) for r in rows]


async def record_failed_attempt(conn: asyncpg.Connection | asyncpg.Pool, assessment_id: int, error: str) -> None:
    await conn.execute(
        "UPDATE assessments SET attempts = attempts + 1, last_error = $2, updated_at = now() WHERE id = $1",
        assessment_id, error[:2000])


async def set_baseline(conn: asyncpg.Connection | asyncpg.Pool, assessment_id: int,
                       baseline: dict[str, JsonValue]) -> None:
    """The first baseline stays: a later one may already include someone else's change."""
    await conn.execute(
        "UPDATE assessments SET baseline = $2, updated_at = now() WHERE id = $1 AND baseline IS NULL",
        assessment_id, baseline)


async def finish(conn: asyncpg.Connection, assessment_id: int, final: FinalAssessment) -> bool:
    """Store the result of a pending assessment and hand it to mining, in the caller's transaction;
    False when it was no longer pending (another replica finished it first)."""
    updated = await conn.fetchval(
        """UPDATE assessments SET status = $2, verdict = $3, score = $4, health = $5, alert = $6, metrics = $7,
                  drift = $8, components = $9, reasons = $10, assessed_at = now(), recovered_at = $11,
                  updated_at = now()
           WHERE id = $1 AND status = 'pending' RETURNING id""",
        assessment_id, final.status, final.verdict, final.score, final.health, final.alert, final.metrics,
        final.drift, final.components, final.reasons, final.recovered_at,
    )
    if updated is None:
        return False
    await enqueue_outcome(conn, assessment_id)
    return True


async def unassessed_executions(conn: asyncpg.Connection | asyncpg.Pool, horizon_s: float,
                                actions: Sequence[str], job_kind: str) -> list[int]:
    """Live executions of ``actions`` by a workflow within the horizon that have no ``job_kind`` job."""
    rows = await conn.fetch(
        """SELECT x.id FROM actions x
           WHERE NOT x.dry_run AND x.status = 'succeeded' AND x.action = ANY($2::text[])
             AND x.finished_at > now() - make_interval(secs => $1)
             AND EXISTS (SELECT 1 FROM workflow_steps s WHERE s.action_id = x.id AND s.name LIKE 'execute:%')
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $3 AND j.ref_id = x.id)
           ORDER BY x.id LIMIT 1000""",
        horizon_s, list(actions), job_kind,
    )
    return [r["id"] for r in rows]


async def incident_alerts(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int) -> list[IncidentAlert]:
    """Each alert of the incident as last received."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (am_fingerprint) am_fingerprint, alertname, labels, status, received_at
           FROM alerts WHERE incident_id = $1 ORDER BY am_fingerprint, received_at DESC, id DESC""",
        incident_id,
    )
    return [IncidentAlert.model_validate(dict(r)) for r in rows]


async def resolved_at(conn: asyncpg.Connection | asyncpg.Pool, incident_id: int, since: datetime) -> datetime | None:
    """The last resolution of one of the incident's alerts received since ``since``."""
    return await conn.fetchval(
        "SELECT max(received_at) FROM alerts WHERE incident_id = $1 AND status = 'resolved' AND received_at >= $2",
        incident_id, since)


async def past_outcomes(conn: asyncpg.Connection | asyncpg.Pool, fingerprint: str, *, exclude_incident: int,
                        limit: int) -> list[PastOutcome]:
    """Final assessments on other incidents of the workload with this fingerprint, the latest first."""
    rows = await conn.fetch(
        """SELECT a.incident_id, a.action, a.verdict, a.score, a.action_at, a.signature, a.reasons
           FROM assessments a JOIN incidents i ON i.id = a.incident_id
           WHERE i.fingerprint = $1 AND a.incident_id <> $2 AND a.status <> 'pending'
           ORDER BY a.action_at DESC LIMIT $3""",
        fingerprint, exclude_incident, limit)
    return [PastOutcome.model_validate({**dict(r), "reasons": r["reasons"] or []}) for r in rows]


# --- the summary --------------------------------------------------------------------------------------

async def action_totals(conn: asyncpg.Connection | asyncpg.Pool) -> ActionTotals:
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE NOT dry_run AND status = 'succeeded') AS executed,
                  count(*) FILTER (WHERE dry_run) AS simulated FROM actions""")
    return ActionTotals.model_validate(dict(row))


async def verdict_counts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    """Assessments per verdict (per status while there is no verdict yet)."""
    rows = await conn.fetch(
        "SELECT coalesce(verdict, status) AS verdict, count(*) AS n FROM assessments GROUP BY 1 ORDER BY 1")
    return {r["verdict"]: int(r["n"]) for r in rows}


async def mean_score(conn: asyncpg.Connection | asyncpg.Pool) -> float | None:
    return await conn.fetchval("SELECT avg(score) FROM assessments WHERE status <> 'pending'")


async def per_action(conn: asyncpg.Connection | asyncpg.Pool) -> list[PerAction]:
    rows = await conn.fetch(
        """SELECT action, count(*) FILTER (WHERE status <> 'pending') AS assessed,
                  count(*) FILTER (WHERE verdict = 'effective') AS effective,
                  count(*) FILTER (WHERE verdict = 'ineffective') AS ineffective,
                  count(*) FILTER (WHERE verdict = 'inconclusive') AS inconclusive,
                  avg(score) AS mean_score
           FROM assessments GROUP BY action ORDER BY assessed DESC, action LIMIT 100""")
    return [PerAction.model_validate(dict(r)) for r in rows]
