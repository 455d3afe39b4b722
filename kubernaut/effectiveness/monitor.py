"""The ``assess`` job: one durable assessment per executed live action.

Life of an assessment (one row in ``assessments``, keyed by the action):

1. first run, right after the action: the row is created and a *baseline* of the target is taken (spec
   hash, restart counts), so "since the action" and "changed by someone else" have a reference;
2. the job reschedules itself until the stabilization window has passed;
3. health, alert, metrics and drift are measured; a source that is briefly unavailable (API server,
   AlertManager, Prometheus) makes the job retry with backoff, until the validity window ends;
4. the verdict is stored (``done``, or ``expired`` when the validity window closed first), audited,
   and the intelligence jobs are woken (embedding of the incident, mining).

Every step is idempotent and the row is the only state, so any replica can claim the job at any point.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from pydantic import JsonValue

from kubernaut.cluster.api import EXECUTOR_FIELD_MANAGER  # the executor's own writes are not drift
from kubernaut.cluster.fleet import target_key as fleet_key
from kubernaut.config.settings import KubernautConfig
from kubernaut.effectiveness import scoring
from kubernaut.effectiveness.models import Component, TargetState
from kubernaut.effectiveness.sources import AlertChecker, FiringAlert, MetricsChecker, SourceUnavailable
from kubernaut.effectiveness.target_reader import TargetForbidden, TargetReader, TargetUnavailable
from kubernaut.execution.catalog import ACTION_NAMES, CATALOG, ActionSpec, CatalogError, get_action
from kubernaut.gitops.detect import is_controller_manager
from kubernaut.models.jobs import ActionRef, IncidentRef, JobKind, Singleton
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import UNKNOWN_ALERT, signature_of
from kubernaut.storage import assessments, audit, jobs
from kubernaut.storage.assessments import (
    ActionState,
    ActionToAssess,
    Assessment,
    AssessmentStatus,
    FinalAssessment,
    NewAssessment,
)
from kubernaut.storage.jobs import Job, Reschedule

logger = logging.getLogger(__name__)

# A baseline taken later than this after the action may already include someone else's change.
BASELINE_GRACE_S = 60.0
MUTATING_ACTIONS = [name for name in ACTION_NAMES if get_action(name).mutates]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def assessable(action: ActionState | None) -> str | None:
    """None when the action is scored, else why not (dry-run, failed, read-only)."""
    if action is None:
        return "no such action"
    if action.dry_run and action.synced_at is None:
        return "dry-run actions changed nothing and are not scored"
    # A proposed change is scored from the moment its merge was synced (its dry-run stands for it).
    if action.status != ("dry_run" if action.dry_run else "succeeded"):
        return f"the action {action.status}: only executed actions are scored"
    try:
        if not get_action(action.action).mutates:
            return f"{action.action} changes nothing: not scored"
    except CatalogError:
        return f"{action.action} is not in the catalog"
    return None


def judged_subject(action: ActionToAssess, catalog: Mapping[str, ActionSpec] | None = None) -> ResourceRef:
    """What is judged: the incident's target (the workload) when the action's catalog entry names its kind
    among its health kinds (ActionSpec.health_kinds), else the action's own target.

    A pod action (restart/delete) replaces the pod; whether that helped shows on its workload.
    """
    spec = (CATALOG if catalog is None else catalog).get(action.action)
    if spec is not None and action.incident_kind in spec.health_kinds and action.incident_name:
        return ResourceRef(kind=action.incident_kind, name=action.incident_name,
                           namespace=action.incident_namespace)
    return ResourceRef.model_validate(action.target)


class Assessor:
    def __init__(self, pool: asyncpg.Pool, config: KubernautConfig, reader: TargetReader | None,
                 now: Callable[[], datetime] = _now) -> None:
        self.pool = pool
        self.config = config
        self.cfg = config.effectiveness
        self.reader = reader
        # A fleet: the reader of each cluster (an action is judged on its own cluster; one of a cluster no longer
        # configured has no reader, hence no health measurement). Empty: ``reader`` for every action.
        self.readers: dict[str, TargetReader | None] = {}
        self._now = now
        secret = self.cfg.alertmanager_token
        self.alerts = AlertChecker(self.cfg.alertmanager_url, secret.get_secret_value() if secret else None,
                                   self.cfg.http_timeout_s)
        secret = self.cfg.prometheus_token
        self.metrics = MetricsChecker(self.cfg.prometheus_url, self.cfg.metric_queries,
                                      secret.get_secret_value() if secret else None, self.cfg.http_timeout_s)

    # --- the job --------------------------------------------------------------------------------

    async def _ensure_row(self, action: ActionToAssess) -> Assessment:
        target = ResourceRef.model_validate(action.target)
        signals = action.signals or []
        alertname = signals[0] if signals else UNKNOWN_ALERT
        subject_kind = action.incident_kind or target.kind
        signature = action.workflow_signature or signature_of(signals, subject_kind)
        action_at = action.synced_at or action.finished_at or action.created_at
        due_at = action_at + timedelta(seconds=self.config.orchestration.stabilization_s)
        return await assessments.create(self.pool, NewAssessment(
            action_id=action.id, incident_id=action.incident_id, workflow_id=action.workflow_id,
            action=action.action, target=target.model_dump(),
            target_key=fleet_key(target.key, action.cluster, self.config.home_cluster), target_kind=subject_kind,
            signature=signature, alertname=alertname, action_at=action_at, due_at=due_at,
            expires_at=due_at + timedelta(seconds=self.cfg.validity_s)))

    def _backoff(self, attempts: int) -> float:
        return min(self.cfg.retry_max_s, self.cfg.retry_initial_s * 2 ** max(0, attempts))

    async def handle(self, job: Job) -> None:
        """The ``assess`` job handler (ref = action id)."""
        await self.run(job.payload(ActionRef).action_id)

    async def run(self, action_id: int) -> None:
        """Assess one action: take the baseline, wait, measure, store (raises Reschedule while waiting)."""
        action = await assessments.action_to_assess(self.pool, action_id)
        why_not = assessable(action)
        if why_not is not None or action is None:
            logger.info("action %s not assessed: %s", action_id, why_not)
            return
        row = await self._ensure_row(action)
        if row.status != "pending":
            return
        now = self._now()
        subject = judged_subject(action)
        reader = self._reader_for(action)
        if row.baseline is None and now < row.due_at:
            await self._take_baseline(row, subject, now, reader)
        if now < row.due_at:
            raise Reschedule((row.due_at - now).total_seconds(), "stabilization window")
        if now > row.expires_at and row.attempts == 0:
            # Measuring now would judge the cluster long after the action, not the action.
            return await self._store(row, action, {}, "expired", "inconclusive", None,
                                     [f"not assessed within the validity window (due {row.due_at:%H:%M:%S}, "
                                      f"expired {row.expires_at:%H:%M:%S} UTC)"], None)
        components, errors = await self._measure(row, action, subject, now, reader)
        if errors and now < row.expires_at:
            delay = self._backoff(row.attempts)
            await assessments.record_failed_attempt(self.pool, row.id, "; ".join(errors))
            logger.info("assessment of action %s waits %.0fs: %s", action_id, delay, "; ".join(errors))
            raise Reschedule(min(delay, max(0.1, (row.expires_at - now).total_seconds())), "; ".join(errors))
        weights = {"health": self.cfg.weight_health, "alert": self.cfg.weight_alert,
                   "metrics": self.cfg.weight_metrics}
        score, verdict, reasons = scoring.combine(components, weights, self.cfg.effective_threshold,
                                                  self.cfg.ineffective_threshold)
        status = "done"
        if errors:
            status = "expired"
            reasons.append(f"validity window closed while sources were unavailable: {'; '.join(errors)}")
        recovered = None
        if verdict == "effective":
            alert = components.get("alert")
            recovered = (alert.detail.get("resolved_at") if alert else None) or now
        await self._store(row, action, components, status, verdict, score, reasons, recovered)

    def _reader_for(self, action: ActionToAssess) -> TargetReader | None:
        if not self.readers or action.cluster is None:
            return self.reader
        return self.readers.get(action.cluster)

    async def _take_baseline(self, row: Assessment, subject: ResourceRef, now: datetime,
                             reader: TargetReader | None) -> None:
        if reader is None:
            return
        try:
            state = await reader.read(subject)
        except (TargetUnavailable, TargetForbidden) as exc:
            logger.info("baseline of %s not taken yet: %s", subject, exc)
            return
        baseline: dict[str, JsonValue] = {
            "spec_hash": state.spec_hash, "generation": state.generation, "exists": state.exists,
            "restarts": {p.uid: p.restarts for p in state.pods}, "taken_at": now.isoformat(),
            "late": (now - row.action_at).total_seconds() > BASELINE_GRACE_S}
        await assessments.set_baseline(self.pool, row.id, baseline)

    async def _measure(self, row: Assessment, action: ActionToAssess, subject: ResourceRef, now: datetime,
                       reader: TargetReader | None) -> tuple[dict[str, Component], list[str]]:
        components: dict[str, Component] = {}
        errors: list[str] = []
        baseline = row.baseline
        trusted = baseline is not None and not baseline.get("late")

        state: TargetState | None = None
        if reader is None:
            components["health"] = Component(name="health", reason="no Kubernetes connection")
        else:
            try:
                state = await reader.read(subject)
            except TargetUnavailable as exc:
                errors.append(str(exc))
            except TargetForbidden as exc:
                components["health"] = Component(name="health", reason=str(exc))
        if state is not None:
            components["health"] = scoring.health(state, row.action_at,
                                                  _restarts(baseline) if trusted else None)
            components["drift"] = _drift(state, baseline, trusted)

        try:
            components["alert"] = await self.alerts.check(await _incident_alerts(self.pool, action.incident_id),
                                                          subject, now)
            resolved = await _resolved_at(self.pool, action.incident_id, row.action_at)
            if resolved is not None:
                components["alert"].detail["resolved_at"] = resolved
        except SourceUnavailable as exc:
            errors.append(str(exc))

        try:
            before = action.synced_at or action.created_at
            components["metrics"] = await self.metrics.check(subject, before, now)
        except SourceUnavailable as exc:
            errors.append(str(exc))
        return components, errors

    async def _store(self, row: Assessment, action: ActionToAssess, components: dict[str, Component],
                     status: AssessmentStatus, verdict: str, score: float | None, reasons: list[str],
                     recovered: datetime | None) -> None:
        def value(name: str) -> float | None:
            c = components.get(name)
            return c.value if c is not None else None

        drift = components.get("drift")
        payload = {k: c.model_dump(mode="json") for k, c in components.items()}
        final = FinalAssessment(
            status=status, verdict=verdict, score=score, health=value("health"), alert=value("alert"),
            metrics=value("metrics"), drift=None if drift is None or drift.value is None else drift.value == 1.0,
            components=payload, reasons=reasons, recovered_at=recovered)
        async with self.pool.acquire() as conn, conn.transaction():
            if not await assessments.finish(conn, row.id, final):
                return  # another replica finished it first
            await audit.append(conn, "effectiveness", f"assessment.{verdict}", action.incident_id, {
                "action_id": action.id, "action": action.action, "score": score, "status": status,
                "reasons": reasons[-1:]})
            # The learning side picks the outcome up: the incident's embedding, then the statistics.
            if action.incident_id is not None:
                await jobs.wake(conn, JobKind.EMBED, IncidentRef(incident_id=action.incident_id))
            await jobs.wake(conn, JobKind.MINE, Singleton())
        _record_metric(action.action, score)
        logger.info("action %s (%s) assessed %s, score %s", action.id, action.action, verdict, score)

    # --- the safety net -------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Enqueue ``assess`` jobs for recent live executions that have none (e.g. executed before this
        version, or by a producer that did not schedule one). Returns how many were added."""
        horizon = self.config.orchestration.stabilization_s + self.cfg.validity_s
        added = 0
        for action_id in await assessments.unassessed_executions(self.pool, horizon, MUTATING_ACTIONS,
                                                                 JobKind.ASSESS):
            added += await jobs.enqueue(self.pool, JobKind.ASSESS, ActionRef(action_id=action_id))
        return added


def _restarts(baseline: dict[str, JsonValue] | None) -> dict[str, int] | None:
    restarts = baseline.get("restarts") if baseline is not None else None
    return {uid: n for uid, n in restarts.items() if isinstance(n, int)} if isinstance(restarts, dict) else None


def _drift(state: TargetState, baseline: dict[str, JsonValue] | None, trusted: bool) -> Component:
    if baseline is None or not trusted:
        why = "no baseline was taken" if baseline is None else "the baseline was taken too late after the action"
        return Component(name="drift", reason=f"not measured: {why}")
    if not state.exists or state.spec_hash is None or baseline.get("spec_hash") is None:
        return Component(name="drift", reason="not measured: no spec to compare")
    if state.spec_hash == baseline["spec_hash"]:
        return Component(name="drift", value=0.0, reason="spec unchanged since the action")
    taken = datetime.fromisoformat(str(baseline["taken_at"]))
    # Writers since the baseline (controllers writing status show up too: the spec hash is the proof,
    # the names are the hint for whoever reads the reason).
    writers = list(dict.fromkeys(m for m, at in state.managers if at >= taken.replace(microsecond=0)
                                 and m != EXECUTOR_FIELD_MANAGER)) or ["unknown"]
    reverted_by = next((w for w in writers if is_controller_manager(w)), None)
    return Component(name="drift", value=1.0,
                     reason=f"spec changed during the window (writers since the action: {', '.join(writers[:4])})"
                     + (f"; {reverted_by} is a GitOps controller: it restored the value in Git" if reverted_by else ""),
                     detail={"writers": writers[:10], "generation": state.generation,
                             "baseline_generation": baseline.get("generation"), "reverted_by": reverted_by})


async def _incident_alerts(pool: asyncpg.Pool, incident_id: int | None) -> list[FiringAlert]:
    if incident_id is None:
        return []
    return [FiringAlert(a.am_fingerprint, a.alertname, a.labels, a.status, a.received_at)
            for a in await assessments.incident_alerts(pool, incident_id)]


async def _resolved_at(pool: asyncpg.Pool, incident_id: int | None, since: datetime) -> datetime | None:
    if incident_id is None:
        return None
    return await assessments.resolved_at(pool, incident_id, since)


def _record_metric(action: str, score: float | None) -> None:
    if score is None:
        return
    try:  # observability is optional for this module: scoring must not fail on a metrics problem
        from kubernaut.observability import metrics

        metrics.assessment_recorded(action, score)
    except Exception:
        logger.debug("assessment metric not recorded", exc_info=True)


# --- reads for the orchestrator and the API ---------------------------------------------------------

_PUBLIC = ("action_id", "incident_id", "workflow_id", "action", "target", "signature", "status", "verdict", "score",
           "health", "alert", "metrics", "drift", "components", "reasons", "attempts", "last_error", "action_at",
           "due_at", "expires_at", "assessed_at", "recovered_at")


async def get_assessment(pool: asyncpg.Pool, action_id: int) -> dict[str, Any] | None:
    """The assessment of an action: ``status`` pending/done/expired, or ``not_applicable`` with the reason
    (dry-run, failed, read-only action) so a caller waiting for it never waits for nothing. None while
    the job has not created the row yet."""
    row = await assessments.by_action(pool, action_id)
    if row is not None:
        return _public(row)
    why_not = assessable(await assessments.action_state(pool, action_id))
    if why_not is not None:
        return {"action_id": action_id, "status": "not_applicable", "verdict": None, "score": None,
                "reasons": [why_not]}
    return None


def _public(row: Assessment) -> dict[str, Any]:
    return {k: getattr(row, k) for k in _PUBLIC}


async def summary(pool: asyncpg.Pool, recent: int = 20) -> dict[str, Any]:
    totals = await assessments.action_totals(pool)
    mean_score = await assessments.mean_score(pool)
    return {
        "executed_actions": totals.executed, "simulated_actions": totals.simulated,
        "assessments": await assessments.verdict_counts(pool),
        "mean_score": round(mean_score, 4) if mean_score is not None else None,
        "per_action": [p.model_dump() for p in await assessments.per_action(pool)],
        "recent": [_public(r) for r in await assessments.latest(pool, recent)],
        "note": "simulated (dry-run) actions changed nothing and are not scored",
    }
