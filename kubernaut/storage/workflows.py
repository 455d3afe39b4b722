"""Workflows and their steps: one row per remediation, one row per step it ran, the blocks it met.

Also what a workflow reads of its neighbours to decide and to report: the analysis it carries out with its
incident's facts, its actions, the recent live outcomes on its target and the outcome counts of its signature.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field

from kubernaut.models.resource import ResourceRef
from kubernaut.storage import jobs

Connection = asyncpg.Connection | asyncpg.Pool

TERMINAL = ("completed", "failed", "rolled_back", "blocked", "cancelled", "timed_out", "denied", "review",
            "declined")  # declined: a proposed change's PR was closed unmerged (issue 15)
# Live outcomes that count as evidence for a (signature, action): the workflow ended and acted.
TERMINAL_LIVE_OUTCOMES = ("completed", "failed", "rolled_back", "timed_out")
_NOT_TERMINAL = f"phase NOT IN ({', '.join(repr(p) for p in TERMINAL)})"
_STEP_LOCK_CLASS = 0x6B77  # "kw": advisory-lock class of workflow_steps writers


class PlanStep(BaseModel):
    """One action of a workflow's plan (or the inverse that undoes one)."""

    model_config = ConfigDict(frozen=True)

    action: str
    target: ResourceRef
    parameters: dict[str, Any] = Field(default_factory=dict)
    purpose: str | None = None
    inverse_of: int | None = None  # the action this one undoes

    def as_json(self) -> dict[str, Any]:
        """As the plan column holds it: the keys a step was written with, no more."""
        absent = {k for k in ("purpose", "inverse_of") if getattr(self, k) is None}
        return self.model_dump(mode="json", exclude=absent)


class WorkflowRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    incident_id: int
    analysis_id: int
    phase: str
    dry_run: bool
    target_key: str | None
    plan: list[PlanStep]
    signature: str | None
    error: str | None
    finished_at: datetime | None


class StepRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    workflow_id: int
    seq: int
    name: str
    status: str
    detail: dict[str, Any]
    kind: str
    attempts: int
    action_id: int | None
    finished_at: datetime | None


class Proposal(BaseModel):
    """The analysis a workflow carries out: what to do, to what, and why."""

    model_config = ConfigDict(frozen=True)

    id: int
    incident_id: int
    engine: str
    action: str
    parameters: dict[str, Any]
    target: ResourceRef
    confidence: float
    root_cause: str
    reasoning: list[str]


class IncidentFacts(BaseModel):
    """What the policy and the learning signature read of the incident."""

    model_config = ConfigDict(frozen=True)

    id: int
    environment: str
    priority: str
    severity: str
    signals: list[str]
    target_kind: str
    cluster: str | None = None  # None: an incident from before the fleet (the home cluster)


class Subject(BaseModel):
    model_config = ConfigDict(frozen=True)

    proposal: Proposal
    incident: IncidentFacts


class PastOutcome(BaseModel):
    """A finished live workflow on a target, for the blocking rules."""

    model_config = ConfigDict(frozen=True)

    workflow_id: int
    phase: str
    finished_at: datetime
    action: str
    parameters: dict[str, Any]


class OutcomeCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    successes: int
    cases: int


class ActionSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: str
    status: str
    plan: list[str]


def _workflow(row: asyncpg.Record) -> WorkflowRecord:
    return WorkflowRecord(id=row["id"], incident_id=row["incident_id"], analysis_id=row["analysis_id"],
                          phase=row["phase"], dry_run=row["dry_run"], target_key=row["target_key"],
                          plan=[PlanStep.model_validate(p) for p in row["plan"] or []], signature=row["signature"],
                          error=row["error"], finished_at=row["finished_at"])


def _step(row: asyncpg.Record) -> StepRecord:
    return StepRecord(workflow_id=row["workflow_id"], seq=row["seq"], name=row["name"], status=row["status"],
                      detail=row["detail"] or {}, kind=row["kind"], attempts=row["attempts"],
                      action_id=row["action_id"], finished_at=row["finished_at"])


# --- workflows -----------------------------------------------------------------------------------

async def create(conn: asyncpg.Connection, *, incident_id: int, analysis_id: int, dry_run: bool, target_key: str,
                 plan: list[dict[str, Any]], signature: str) -> tuple[int, bool]:
    """The workflow of one analysis: (id, created). A second call for the analysis returns the first's id."""
    workflow_id = await conn.fetchval(
        """INSERT INTO workflows (incident_id, analysis_id, phase, dry_run, target_key, plan, signature)
           VALUES ($1, $2, 'pending', $3, $4, $5, $6) ON CONFLICT (analysis_id) DO NOTHING RETURNING id""",
        incident_id, analysis_id, dry_run, target_key, plan, signature,
    )
    if workflow_id is not None:
        return workflow_id, True
    return await conn.fetchval("SELECT id FROM workflows WHERE analysis_id = $1", analysis_id), False


async def get(conn: Connection, workflow_id: int) -> WorkflowRecord | None:
    row = await conn.fetchrow("SELECT * FROM workflows WHERE id = $1", workflow_id)
    return None if row is None else _workflow(row)


async def of_analysis(conn: Connection, analysis_id: int) -> WorkflowRecord | None:
    """The workflow of an analysis (there is at most one), None before the orchestrator created it."""
    row = await conn.fetchrow("SELECT * FROM workflows WHERE analysis_id = $1", analysis_id)
    return None if row is None else _workflow(row)


async def incident_of(conn: Connection, workflow_id: int) -> int | None:
    return await conn.fetchval("SELECT incident_id FROM workflows WHERE id = $1", workflow_id)


async def active_before(conn: Connection, target_key: str | None, workflow_id: int) -> int | None:
    """The oldest live workflow older than this one still working on the target, if any."""
    return await conn.fetchval(
        f"""SELECT id FROM workflows WHERE target_key = $1 AND id < $2 AND NOT dry_run AND {_NOT_TERMINAL}
            ORDER BY id LIMIT 1""",
        target_key, workflow_id,
    )


async def set_phase(conn: Connection, workflow_id: int, phase: str) -> None:
    await conn.execute(
        "UPDATE workflows SET phase = $2, updated_at = now() WHERE id = $1 AND phase <> $2", workflow_id, phase)


async def set_plan(conn: Connection, workflow_id: int, plan: list[dict[str, Any]]) -> None:
    await conn.execute("UPDATE workflows SET plan = $2 WHERE id = $1", workflow_id, plan)


async def finish(conn: Connection, workflow_id: int, phase: str, error: str | None) -> bool:
    """End the workflow in ``phase``; False when it had already ended (another replica ended it first)."""
    changed = await conn.fetchval(
        f"""UPDATE workflows SET phase = $2, error = $3, finished_at = now(), updated_at = now()
            WHERE id = $1 AND {_NOT_TERMINAL} RETURNING id""",
        workflow_id, phase, error,
    )
    return changed is not None


async def mark_gave_up(conn: Connection, workflow_id: int, error: str) -> None:
    """A workflow its job gave up on: failed, unless it had ended already."""
    await conn.execute(
        "UPDATE workflows SET phase = 'failed', error = $2, finished_at = now() WHERE id = $1 "
        "AND finished_at IS NULL", workflow_id, error)


# --- steps ---------------------------------------------------------------------------------------

async def finished_steps(conn: Connection, workflow_id: int) -> dict[str, StepRecord]:
    """The workflow's finished steps by name (a name runs at most once per workflow)."""
    rows = await conn.fetch(
        "SELECT * FROM workflow_steps WHERE workflow_id = $1 AND finished_at IS NOT NULL", workflow_id)
    return {r["name"]: _step(r) for r in rows}


async def record_step(conn: asyncpg.Connection, workflow_id: int, name: str, status: str, detail: dict[str, Any], *,
                      action_id: int | None = None, kind: str = "control", attempts: int = 1,
                      overwrite: bool = True) -> StepRecord | None:
    """Write a finished step in the caller's transaction: the one writer of ``workflow_steps``.

    A step's seq is max+1: two writers of one workflow (a replica whose lease lapsed and its successor) would
    pick the same seq, so they take turns on an advisory lock first. The two-int form keeps this keyspace apart
    from the single-bigint locks elsewhere. Then the write is fenced: a holder of the ``workflow`` job whose
    lease was lost (another replica claimed the job) raises LeaseLost here and its transaction writes nothing,
    so no step is advanced by two replicas.

    A step already recorded under ``name`` is replaced, or kept (None returned) when ``overwrite`` is False.
    """
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _STEP_LOCK_CLASS, workflow_id)
    await jobs.fence(conn)
    on_conflict = ("""DO UPDATE SET status = EXCLUDED.status, detail = EXCLUDED.detail,
                          finished_at = EXCLUDED.finished_at, action_id = EXCLUDED.action_id,
                          attempts = EXCLUDED.attempts""" if overwrite else "DO NOTHING")
    row = await conn.fetchrow(
        f"""INSERT INTO workflow_steps (workflow_id, seq, name, status, detail, finished_at, action_id, kind, attempts)
            VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM workflow_steps WHERE workflow_id = $1),
                    $2, $3, $4, now(), $5, $6, $7)
            ON CONFLICT (workflow_id, name) {on_conflict} RETURNING *""",
        workflow_id, name, status, detail, action_id, kind, attempts,
    )
    return None if row is None else _step(row)


# --- what a workflow reads around it -------------------------------------------------------------

async def subject(conn: Connection, analysis_id: int) -> Subject | None:
    """The analysis a workflow carries out, with its incident's facts (one statement, one snapshot)."""
    row = await conn.fetchrow(
        """SELECT a.id, a.incident_id, a.engine, a.action, a.parameters, a.target, a.confidence, a.root_cause,
                  a.reasoning, i.environment, i.priority, i.severity, i.signals, i.target_kind, i.cluster
           FROM analyses a JOIN incidents i ON i.id = a.incident_id WHERE a.id = $1""",
        analysis_id,
    )
    if row is None:
        return None
    return Subject(
        proposal=Proposal(id=row["id"], incident_id=row["incident_id"], engine=row["engine"], action=row["action"],
                          parameters=row["parameters"] or {}, target=ResourceRef.model_validate(row["target"]),
                          confidence=row["confidence"], root_cause=row["root_cause"],
                          reasoning=list(row["reasoning"] or [])),
        incident=IncidentFacts(id=row["incident_id"], environment=row["environment"], priority=row["priority"],
                               severity=row["severity"], signals=list(row["signals"] or []),
                               target_kind=row["target_kind"], cluster=row["cluster"]),
    )


async def incident_of_analysis(conn: Connection, analysis_id: int) -> int | None:
    return await conn.fetchval("SELECT incident_id FROM analyses WHERE id = $1", analysis_id)


async def failed_attempts(conn: Connection, idempotency_base: str) -> int:
    """How many attempts of one step the executor recorded as failed (keys ``base`` and ``base-aN``)."""
    return await conn.fetchval(
        "SELECT count(*) FROM actions WHERE (idempotency_key = $1 OR idempotency_key LIKE $1 || '-a%') "
        "AND status = 'failed'", idempotency_base,
    )


async def actions_of(conn: Connection, workflow_id: int) -> list[ActionSummary]:
    rows = await conn.fetch("SELECT action, status, plan FROM actions WHERE workflow_id = $1 ORDER BY id",
                            workflow_id)
    return [ActionSummary(action=r["action"], status=r["status"], plan=list(r["plan"] or [])) for r in rows]


async def recent_outcomes(conn: Connection, target_key: str, since: datetime) -> list[PastOutcome]:
    """Live workflows on the target that finished since ``since``, latest first (at most 50)."""
    rows = await conn.fetch(
        """SELECT w.id, w.phase, w.finished_at, a.action, a.parameters
           FROM workflows w JOIN analyses a ON a.id = w.analysis_id
           WHERE w.target_key = $1 AND NOT w.dry_run AND w.finished_at IS NOT NULL AND w.finished_at >= $2
           ORDER BY w.finished_at DESC, w.id DESC LIMIT 50""",
        target_key, since,
    )
    return [PastOutcome(workflow_id=r["id"], phase=r["phase"], finished_at=r["finished_at"], action=r["action"],
                        parameters=r["parameters"] or {}) for r in rows]


async def outcome_counts(conn: Connection, signature: str, action: str, *, cluster: str | None = None,
                         home: str = "") -> OutcomeCounts:
    """Live (not dry-run) workflows that ran ``action`` for this signature and ended: completed vs all (only
    those about incidents of ``cluster`` when given; an incident without a cluster is ``home``'s)."""
    row = await conn.fetchrow(
        """SELECT count(*) FILTER (WHERE w.phase = 'completed') AS successes, count(*) AS cases
           FROM workflows w JOIN analyses a ON a.id = w.analysis_id JOIN incidents i ON i.id = w.incident_id
           WHERE NOT w.dry_run AND w.signature = $1 AND a.action = $2 AND w.phase = ANY($3::text[])
             AND ($4::text IS NULL OR coalesce(i.cluster, $5) = $4)""",
        signature, action, list(TERMINAL_LIVE_OUTCOMES), cluster, home,
    )
    return OutcomeCounts(successes=row["successes"], cases=row["cases"])


# --- blocks --------------------------------------------------------------------------------------

async def record_block(conn: Connection, *, target_key: str, action: str, rule: str, reason: str,
                       until: datetime | None, workflow_id: int) -> None:
    await conn.execute(
        "INSERT INTO blocks (target_key, action, rule, reason, until, workflow_id) VALUES ($1,$2,$3,$4,$5,$6)",
        target_key, action, rule, reason, until, workflow_id,
    )
