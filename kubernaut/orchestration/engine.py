"""The workflow state machine: policy → dry-run(s) with diff → (approval) → execute → stabilize → verify →
complete, or → rollback through inverses → escalate.

Every transition is a row in PostgreSQL and every step is looked up by name before it runs, so a
replica that dies anywhere leaves a workflow another replica resumes without repeating a step.
Executor calls carry idempotency keys derived from (workflow, step, attempt): a call retried after a
crash or a timeout returns the recorded outcome instead of acting twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import asyncpg

from kubernaut.config.settings import KubernautConfig
from kubernaut.execution.catalog import CatalogError, get_action, validate_request
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.observability import metrics
from kubernaut.orchestration import autonomy, blocking
from kubernaut.orchestration.plans import plan_for
from kubernaut.orchestration.policy import PolicyInput, evaluate, load_policy
from kubernaut.storage import approvals, audit, incidents, jobs, notifications
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Reschedule

logger = logging.getLogger(__name__)

_STEP_LOCK_CLASS = 0x6B77  # "kw": advisory-lock class of workflow_steps writers
TERMINAL = ("completed", "failed", "rolled_back", "blocked", "cancelled", "timed_out", "denied", "review")
_INCIDENT_PHASE = {"failed": "action_failed", "rolled_back": "rolled_back", "blocked": "blocked",
                   "cancelled": "cancelled", "timed_out": "escalated", "denied": "denied", "review": "human_review"}
_SEVERITY = {"completed": "success", "failed": "failure", "rolled_back": "failure", "timed_out": "failure",
             "blocked": "warning", "denied": "warning", "review": "warning", "cancelled": "info"}


class ExecutorPort(Protocol):
    async def execute(self, request: ActionRequest) -> ActionResult: ...

    async def verify(self, action_id: int) -> dict[str, Any]: ...


class AssessmentPort(Protocol):
    async def assessment(self, action_id: int) -> dict[str, Any] | None: ...


class ApprovalError(ValueError):
    """A decision that cannot be taken (unknown, already decided, expired, invalid override)."""

    def __init__(self, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.status = status


async def _lock_steps(conn: Any, workflow_id: int) -> None:
    """Every writer of ``workflow_steps`` takes this first, in its transaction. A step's seq is max+1: two
    writers of one workflow (a replica whose lease lapsed and its successor) would pick the same seq, so
    they take turns. The two-int form keeps this keyspace apart from the single-bigint locks elsewhere.

    Then the write is fenced: a holder of the ``workflow`` job whose lease was lost (another replica claimed
    the job) raises LeaseLost here and its transaction writes nothing, so no step is advanced by two replicas."""
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _STEP_LOCK_CLASS, workflow_id)
    await jobs.fence(conn)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WorkflowEngine:
    def __init__(self, db: Database, executor: ExecutorPort, config: KubernautConfig,
                 on_notification: Callable[[], None] = lambda: None,
                 assessments: AssessmentPort | None = None) -> None:
        self.db = db
        self.executor = executor
        self.assessments = assessments
        self.config = config
        self.cfg = config.orchestration
        self.policy = load_policy(self.cfg.policy_file)
        self._on_notification = on_notification

    # --- creation ------------------------------------------------------------------------------

    async def start(self, analysis_id: int) -> int | None:
        """Handler of ``orchestrate`` jobs: one workflow per analysis, then the ``workflow`` job drives it."""
        pool = self.db.pool
        analysis = await pool.fetchrow("SELECT * FROM analyses WHERE id = $1", analysis_id)
        if analysis is None:
            return None
        incident = await pool.fetchrow("SELECT * FROM incidents WHERE id = $1", analysis["incident_id"])
        target = ResourceRef.model_validate(analysis["target"])
        plan = [p.model_dump(mode="json") for p in plan_for(analysis["action"], target, analysis["parameters"])]
        signature = signature_of(incident["signals"], incident["target_kind"])
        async with pool.acquire() as conn, conn.transaction():
            workflow_id = await conn.fetchval(
                """INSERT INTO workflows (incident_id, analysis_id, phase, dry_run, target_key, plan, signature)
                   VALUES ($1, $2, 'pending', $3, $4, $5, $6) ON CONFLICT (analysis_id) DO NOTHING RETURNING id""",
                incident["id"], analysis_id, self.config.dry_run, target.key, plan, signature,
            )
            if workflow_id is None:
                workflow_id = await conn.fetchval("SELECT id FROM workflows WHERE analysis_id = $1", analysis_id)
            else:
                await audit.append(conn, "orchestrator", "workflow.created", incident["id"], {
                    "workflow_id": workflow_id, "dry_run": self.config.dry_run,
                    "plan": [f"{p['action']} on {target}" for p in plan]})
            await jobs.enqueue(conn, "workflow", workflow_id)
        return workflow_id

    # --- the state machine ---------------------------------------------------------------------

    async def advance(self, workflow_id: int) -> None:
        """Handler of ``workflow`` jobs: run steps until the workflow ends or must wait (Reschedule)."""
        wf = await self.db.pool.fetchrow("SELECT * FROM workflows WHERE id = $1", workflow_id)
        if wf is None or wf["phase"] in TERMINAL:
            return
        analysis = await self.db.pool.fetchrow("SELECT * FROM analyses WHERE id = $1", wf["analysis_id"])
        incident = await self.db.pool.fetchrow("SELECT * FROM incidents WHERE id = $1", wf["incident_id"])
        steps = await self._steps(workflow_id)
        plan: list[dict[str, Any]] = list(wf["plan"])

        if "policy" not in steps:
            if not wf["dry_run"]:
                await self._one_workflow_per_target(wf)
            verdict = await self._decide(wf, analysis, incident)
            await self._record(workflow_id, "policy", "succeeded", verdict)
            await self._set_phase(wf, "executing")
            steps = await self._steps(workflow_id)
        decision = steps["policy"]["detail"]

        # Dry-runs always run (they change nothing): whoever reviews, approves or audits sees the exact diff.
        for index, planned in enumerate(plan):
            name = f"dry_run:{index}"
            if name not in steps:
                result = await self._call(wf, name, planned, dry_run=True)
                if result.status not in ("dry_run", "succeeded"):
                    return await self._finish(wf, analysis, "failed", f"dry-run of {planned['action']} "
                                              f"{result.status}: {result.error or result.message}")

        steps = await self._steps(workflow_id)
        if decision["outcome"] in ("denied", "review", "blocked"):
            return await self._finish(wf, analysis, decision["outcome"], decision["reason"])
        if wf["dry_run"]:
            note = "execution mode is dry-run: nothing was changed"
            if decision["outcome"] == "require_approval":
                note += f" (live, this would wait for approval: {decision['reason']})"
            return await self._finish(wf, analysis, "completed", note)

        if decision["outcome"] == "require_approval" and "approval" not in steps:
            approved_plan = await self._approval(wf, analysis, plan, steps)
            if approved_plan is None:
                return
            plan = approved_plan
            steps = await self._steps(workflow_id)

        for index, planned in enumerate(plan):
            name = f"execute:{index}"
            if name not in steps:
                await self._set_phase(wf, "executing")
                result = await self._execute_step(wf, name, planned)
                if result.status != "succeeded":
                    return await self._rollback(wf, analysis, plan, f"{planned['action']} {result.status}: "
                                                f"{result.error or result.message}")
                steps = await self._steps(workflow_id)
            spec = get_action(planned["action"])
            verify_name = f"verify:{index}"
            if spec.mutates and verify_name not in steps:
                await self._set_phase(wf, "verifying")
                passed, detail = await self._verify_step(wf, steps[name], planned)
                await self._record(workflow_id, verify_name, "succeeded" if passed else "failed", detail)
                if not passed:
                    return await self._rollback(wf, analysis, plan, f"verification of {planned['action']} failed: "
                                                f"{detail.get('reason', '')}")
        return await self._finish(wf, analysis, "completed", "remediation executed and verified")

    # --- steps ---------------------------------------------------------------------------------

    async def _decide(self, wf: Any, analysis: Any, incident: Any) -> dict[str, Any]:
        target = ResourceRef.model_validate(analysis["target"])
        spec = get_action(analysis["action"])
        plan = spec.plan(target, analysis["parameters"])
        facts = PolicyInput(
            environment=incident["environment"], priority=incident["priority"], severity=incident["severity"],
            risk=plan.risk.value, target_kind=target.kind, action=spec.name, namespace=target.namespace,
            engine=analysis["engine"], mutates=spec.mutates, sensitive=plan.sensitive,
            confidence=analysis["confidence"],
        )
        verdict = evaluate(self.policy, facts, unknown_environment=self.cfg.unknown_environment)
        detail: dict[str, Any] = {"facts": facts.model_dump(), "rule": verdict.rule, "reason": verdict.reason,
                                  "policy": verdict.decision}
        outcome = {"deny": "denied", "review": "review"}.get(verdict.decision, verdict.decision)
        if outcome == "allow" and spec.mutates:
            async with self.db.pool.acquire() as conn:
                block = await blocking.check(conn, self.cfg, target.key, spec.name, analysis["parameters"])
                if block is not None and not wf["dry_run"]:
                    await blocking.record(conn, target.key, spec.name, block, wf["id"])
                    detail.update(block=block.model_dump(mode="json"))
                    return {**detail, "outcome": "review" if block.review else "blocked",
                            "reason": f"{block.rule}: {block.reason}"
                                      + (f" (until {block.until:%Y-%m-%d %H:%M:%S} UTC)" if block.until else "")}
                evidence = await autonomy.measure(conn, wf["signature"], spec.name, self.cfg.autonomy_min_cases,
                                                  self.cfg.autonomy_min_lower_bound)
            detail["autonomy"] = evidence.model_dump()
            if not evidence.sufficient:
                outcome = "require_approval"
                detail["reason"] = f"{verdict.reason}; not enough evidence to act unattended: {evidence.explanation}"
        elif spec.mutates and outcome == "require_approval":
            async with self.db.pool.acquire() as conn:
                block = await blocking.check(conn, self.cfg, target.key, spec.name, analysis["parameters"])
                if block is not None and not wf["dry_run"]:
                    await blocking.record(conn, target.key, spec.name, block, wf["id"])
                    return {**detail, "block": block.model_dump(mode="json"),
                            "outcome": "review" if block.review else "blocked",
                            "reason": f"{block.rule}: {block.reason}"}
        detail["outcome"] = outcome
        return detail

    async def _one_workflow_per_target(self, wf: Any) -> None:
        other = await self.db.pool.fetchval(
            f"""SELECT id FROM workflows WHERE target_key = $1 AND id < $2 AND NOT dry_run
                AND phase NOT IN ({", ".join(f"'{p}'" for p in TERMINAL)}) ORDER BY id LIMIT 1""",
            wf["target_key"], wf["id"],
        )
        if other is not None:
            raise Reschedule(5.0, f"workflow {other} is still working on this target")

    async def _call(self, wf: Any, name: str, planned: dict[str, Any], *, dry_run: bool, attempt: int = 0,
                    key_suffix: str = "") -> ActionResult:
        request = ActionRequest(
            workflow_id=wf["id"], incident_id=wf["incident_id"], action=planned["action"],
            target=ResourceRef.model_validate(planned["target"]), parameters=planned["parameters"],
            idempotency_key=f"workflow-{wf['id']}-{name}{key_suffix}" + (f"-a{attempt}" if attempt else ""),
            dry_run=dry_run, inverse_of=planned.get("inverse_of"),
        )
        try:
            result = await asyncio.wait_for(self.executor.execute(request), timeout=self.cfg.step_timeout_s)
        except asyncio.TimeoutError:
            # It may still act: the same key next time returns whatever it recorded.
            raise Reschedule(5.0, f"{name}: executor did not answer within {self.cfg.step_timeout_s:.0f}s") from None
        if dry_run or result.status not in ("failed",):
            await self._record(wf["id"], name, "succeeded" if result.status in ("dry_run", "succeeded") else "failed",
                               result.model_dump(mode="json"), action_id=result.action_id,
                               kind="action", attempts=attempt + 1)
        return result

    async def _execute_step(self, wf: Any, name: str, planned: dict[str, Any]) -> ActionResult:
        base = f"workflow-{wf['id']}-{name}"
        attempt = await self.db.pool.fetchval(
            "SELECT count(*) FROM actions WHERE (idempotency_key = $1 OR idempotency_key LIKE $1 || '-a%') "
            "AND status = 'failed'", base,
        )
        result = await self._call(wf, name, planned, dry_run=False, attempt=attempt)
        if result.status == "succeeded" and get_action(planned["action"]).mutates:
            # The effectiveness monitor takes its baseline now and scores after its stabilization window.
            await jobs.enqueue(self.db.pool, "assess", result.action_id)
        if result.status == "failed":
            retryable = bool(getattr(result, "retryable", False))
            if retryable and attempt + 1 < self.cfg.step_max_attempts:
                raise Reschedule(min(300.0, 2.0 ** (attempt + 1)), f"{name} failed transiently: {result.error}")
            await self._record(wf["id"], name, "failed", result.model_dump(mode="json"),
                               action_id=result.action_id, kind="action", attempts=attempt + 1)
        return result

    async def _verify_step(self, wf: Any, executed: Any, planned: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        finished = executed["finished_at"]
        ready_at = finished + timedelta(seconds=self.cfg.stabilization_s)
        if _now() < ready_at:
            raise Reschedule((ready_at - _now()).total_seconds(), "stabilization window")
        try:
            outcome = await asyncio.wait_for(self.executor.verify(executed["action_id"]),
                                             timeout=self.cfg.step_timeout_s)
        except asyncio.TimeoutError:
            raise Reschedule(self.cfg.verify_interval_s, "verification timed out; trying again") from None
        passed = outcome.get("passed")
        deadline = ready_at + timedelta(seconds=self.cfg.verify_timeout_s)
        if passed is None:
            if _now() < deadline:
                raise Reschedule(self.cfg.verify_interval_s, "verification cannot tell yet")
            return False, {**outcome, "reason": f"still undecided after {self.cfg.verify_timeout_s:.0f}s"}
        detail = {**outcome, "reason": "; ".join(outcome.get("checks", [])) or str(passed)}
        if not passed or self.assessments is None:
            return bool(passed), detail
        # The action did what it says; did it fix the problem? The effectiveness monitor decides.
        assessment = await self.assessments.assessment(executed["action_id"])
        if assessment is None or assessment.get("status") == "pending":
            if _now() < deadline:
                raise Reschedule(self.cfg.verify_interval_s, "waiting for the effectiveness assessment")
            return True, {**detail, "assessment": None,
                          "reason": detail["reason"] + "; no effectiveness assessment in time (not scored)"}
        detail["assessment"] = {k: assessment.get(k) for k in ("status", "verdict", "score", "reasons")}
        if assessment.get("verdict") == "ineffective":
            return False, {**detail, "reason": f"the action was ineffective (score {assessment.get('score')}): "
                                               + "; ".join(assessment.get("reasons") or [])}
        return True, detail

    async def _approval(self, wf: Any, analysis: Any, plan: list[dict[str, Any]], steps: dict[str, Any]
                        ) -> list[dict[str, Any]] | None:
        """Wait for a human: the plan to run (with an approved override), or None when the workflow ended."""
        main = plan[-1]
        async with self.db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            approval = await approvals.for_workflow(conn, wf["id"])
            if approval is None:
                diff = (steps.get(f"dry_run:{len(plan) - 1}") or {}).get("detail", {}).get("diff")
                approval_id = await approvals.create(
                    conn, workflow_id=wf["id"], incident_id=wf["incident_id"], action=main["action"],
                    target=main["target"], parameters=main["parameters"],
                    reason=steps["policy"]["detail"]["reason"], diff=diff,
                    expires_at=_now() + timedelta(seconds=self.cfg.approval_ttl_s),
                )
                await conn.execute(
                    "UPDATE workflows SET phase = 'awaiting_approval', updated_at = now() WHERE id = $1", wf["id"])
                await incidents.set_phase(conn, wf["incident_id"], "awaiting_approval")
                await audit.append(conn, "orchestrator", "approval.requested", wf["incident_id"],
                                   {"approval_id": approval_id, "workflow_id": wf["id"], "action": main["action"]})
                await notifications.create(
                    conn, wf["incident_id"], "approval.requested",
                    title=f"[kubernaut] approval needed: {main['action']} on "
                          f"{ResourceRef.model_validate(main['target'])}",
                    body=(f"Incident #{wf['incident_id']}: {analysis['root_cause']}\n"
                          f"Why approval: {steps['policy']['detail']['reason']}\n"
                          f"Approve: POST /api/v1/approvals/{approval_id}/approve  (expires in "
                          f"{self.cfg.approval_ttl_s:.0f}s)\n" + (f"Dry-run diff:\n{diff}" if diff else "")),
                    severity="warning",
                )
                wait_s: float | None = min(5.0, self.cfg.approval_ttl_s)
                approval = None
            elif approval["status"] == "pending":
                remaining = (approval["expires_at"] - _now()).total_seconds()
                wait_s = min(5.0, remaining) if remaining > 0 else None
            else:
                wait_s = None
            if approval is not None and approval["status"] == "pending" and wait_s is None:
                await conn.execute("UPDATE approvals SET status = 'expired' WHERE id = $1 AND status = 'pending'",
                                   approval["id"])
                metrics.approval_decided("expired")
                await audit.append(conn, "orchestrator", "approval.expired", wf["incident_id"],
                                   {"approval_id": approval["id"]})
                approval = await approvals.for_workflow(conn, wf["id"])
            if approval is not None and approval["status"] == "approved":
                used = await conn.fetchval(
                    "UPDATE approvals SET status = 'used', used_at = now() WHERE id = $1 AND status = 'approved' "
                    "RETURNING id", approval["id"])
                if used is None:
                    wait_s = 1.0  # another replica is using it right now
                else:
                    await audit.append(conn, "orchestrator", "approval.used", wf["incident_id"],
                                       {"approval_id": approval["id"], "by": approval["decided_by"]})
        # Waiting is decided inside the transaction but signalled outside it, so the request commits.
        if approval is None or wait_s is not None:
            if approval is None:
                self._on_notification()
            raise Reschedule(wait_s or 1.0, "waiting for approval")
        status = approval["status"]
        if status in ("expired", "rejected", "cancelled"):
            phase = "timed_out" if status == "expired" else "cancelled"
            why = (f"approval {approval['id']} expired without a decision: escalated" if status == "expired" else
                   f"rejected by {approval['decided_by']}: {approval['decision_reason'] or 'no reason given'}")
            await self._record(wf["id"], "approval", status, {"approval_id": approval["id"], "reason": why})
            await self._finish(wf, analysis, phase, why)
            return None
        override = approval["override_parameters"]
        if override:
            plan = [*plan[:-1], {**main, "parameters": {**main["parameters"], **override}}]
            async with self.db.pool.acquire() as conn, conn.transaction():
                await jobs.fence(conn)
                await conn.execute("UPDATE workflows SET plan = $2 WHERE id = $1", wf["id"], plan)
            result = await self._call(wf, "dry_run:override", plan[-1], dry_run=True)
            if result.status != "dry_run":
                await self._finish(wf, analysis, "failed", f"dry-run with the approved override {result.status}: "
                                   f"{result.error or result.message}")
                return None
        await self._record(wf["id"], "approval", "succeeded", {
            "approval_id": approval["id"], "by": approval["decided_by"], "reason": approval["decision_reason"],
            "override": override})
        return plan

    async def _rollback(self, wf: Any, analysis: Any, plan: list[dict[str, Any]], why: str) -> None:
        steps = await self._steps(wf["id"])
        undone, impossible = [], []
        for index in reversed(range(len(plan))):
            executed = steps.get(f"execute:{index}")
            if executed is None or executed["status"] != "succeeded":
                continue
            inverse = executed["detail"].get("inverse")
            if not inverse:
                if get_action(plan[index]["action"]).mutates:
                    impossible.append(plan[index]["action"])
                continue
            name = f"rollback:{index}"
            if name in steps:
                undone.append(inverse["action"])
                continue
            result = await self._call(wf, name, inverse, dry_run=False)
            if result.status != "succeeded":
                await self._record(wf["id"], name, "failed", result.model_dump(mode="json"),
                                   action_id=result.action_id, kind="action")
                return await self._finish(wf, analysis, "failed",
                                          f"{why}; rollback by {inverse['action']} failed too: {result.error}: "
                                          "escalated to a human")
            undone.append(inverse["action"])
            metrics.action_executed(plan[index]["action"], "rolled_back", dry_run=False)
        if undone:
            note = f"{why}; rolled back by {', '.join(undone)}"
            if impossible:
                note += f" ({', '.join(impossible)} has no inverse)"
            return await self._finish(wf, analysis, "rolled_back", note + ": escalated to a human")
        return await self._finish(wf, analysis, "failed", f"{why}; nothing to roll back: escalated to a human")

    # --- bookkeeping ---------------------------------------------------------------------------

    async def _steps(self, workflow_id: int) -> dict[str, Any]:
        rows = await self.db.pool.fetch(
            "SELECT * FROM workflow_steps WHERE workflow_id = $1 AND finished_at IS NOT NULL", workflow_id)
        return {r["name"]: dict(r) for r in rows}

    async def _record(self, workflow_id: int, name: str, status: str, detail: dict[str, Any], *,
                      action_id: int | None = None, kind: str = "control", attempts: int = 1) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            await _lock_steps(conn, workflow_id)
            await conn.execute(
                """INSERT INTO workflow_steps (workflow_id, seq, name, status, detail, finished_at, action_id, kind,
                                               attempts)
                   VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM workflow_steps WHERE workflow_id = $1),
                           $2, $3, $4, now(), $5, $6, $7)
                   ON CONFLICT (workflow_id, name) DO UPDATE SET status = EXCLUDED.status, detail = EXCLUDED.detail,
                       finished_at = EXCLUDED.finished_at, action_id = EXCLUDED.action_id,
                       attempts = EXCLUDED.attempts""",
                workflow_id, name, status, detail, action_id, kind, attempts,
            )

    async def _set_phase(self, wf: Any, phase: str) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            await conn.execute(
                "UPDATE workflows SET phase = $2, updated_at = now() WHERE id = $1 AND phase <> $2", wf["id"], phase)

    async def _finish(self, wf: Any, analysis: Any, phase: str, why: str) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            changed = await conn.fetchval(
                f"""UPDATE workflows SET phase = $2, error = $3, finished_at = now(), updated_at = now()
                    WHERE id = $1 AND phase NOT IN ({", ".join(f"'{p}'" for p in TERMINAL)}) RETURNING id""",
                wf["id"], phase, None if phase == "completed" else why,
            )
            if changed is None:
                return  # another replica ended it first
            # A completed plan that changes nothing (notify_only, diagnostics) handed the incident to a human:
            # calling it "remediated" would tell the on-call it is fixed.
            hands_off = not any(get_action(p["action"]).mutates for p in wf["plan"])
            incident_phase = ("dry_run_completed" if wf["dry_run"] else "escalated" if hands_off else "remediated") \
                if phase == "completed" else _INCIDENT_PHASE[phase]
            await incidents.set_phase(conn, wf["incident_id"], incident_phase)
            await audit.append(conn, "orchestrator", f"workflow.{phase}", wf["incident_id"],
                               {"workflow_id": wf["id"], "reason": why})
            target = ResourceRef.model_validate(analysis["target"])
            mode = "DRY-RUN (nothing changed)" if wf["dry_run"] else "LIVE"
            actions = await conn.fetch("SELECT action, status, plan FROM actions WHERE workflow_id = $1 ORDER BY id",
                                       wf["id"])
            lines = [f"Incident #{wf['incident_id']}: {analysis['root_cause']}",
                     f"Decision: {analysis['action']} on {target} [{mode}] → workflow {phase}: {why}",
                     f"Engine: {analysis['engine']} (confidence {analysis['confidence']:.2f})"]
            for row in actions:
                lines.append(f"- {row['action']}: {row['status']}")
                lines.extend(f"    {step}" for step in row["plan"][:6])
            if analysis["action"] == "notify_only" and (analysis["parameters"] or {}).get("reason"):
                lines.append(f"For the on-call: {analysis['parameters']['reason']}")
            # Which measured outcomes moved the decision (kubernaut.analysis.learning).
            lines.extend(r for r in (analysis["reasoning"] or []) if r.startswith("learning:"))
            await notifications.create(
                conn, wf["incident_id"], f"workflow.{phase}",
                title=f"[kubernaut] {analysis['action']} on {target}: {phase}"
                      + (" (dry-run)" if wf["dry_run"] else ""),
                body="\n".join(lines), severity=_SEVERITY.get(phase, "info"),
            )
            await _lock_steps(conn, wf["id"])
            await conn.execute(
                """INSERT INTO workflow_steps (workflow_id, seq, name, status, detail, finished_at)
                   VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM workflow_steps WHERE workflow_id = $1),
                           'notify', 'succeeded', $2, now()) ON CONFLICT (workflow_id, name) DO NOTHING""",
                wf["id"], {"event": f"workflow.{phase}"},
            )
        self._on_notification()

    # --- approvals API -------------------------------------------------------------------------

    async def decide(self, approval_id: int, approve: bool, by: str, reason: str | None,
                     override: dict[str, Any] | None) -> dict[str, Any]:
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM approvals WHERE id = $1 FOR UPDATE", approval_id)
            if row is None:
                raise ApprovalError(f"approval {approval_id} not found", status=404)
            if row["status"] != "pending":
                raise ApprovalError(f"approval {approval_id} is already {row['status']}")
            if row["expires_at"] <= _now():
                raise ApprovalError(f"approval {approval_id} expired at {row['expires_at']:%Y-%m-%d %H:%M:%S} UTC")
            if override and not approve:
                raise ApprovalError("a rejection cannot carry a parameter override", status=422)
            if override:
                try:
                    validate_request(row["action"], ResourceRef.model_validate(row["target"]),
                                     {**row["parameters"], **override})
                except CatalogError as exc:
                    raise ApprovalError(f"override refused: {exc}", status=422) from None
            status = "approved" if approve else "rejected"
            updated = await conn.fetchrow(
                """UPDATE approvals SET status = $2, decided_by = $3, decided_at = now(), decision_reason = $4,
                       override_parameters = $5 WHERE id = $1 RETURNING *""",
                approval_id, status, by, reason, override or None,
            )
            await audit.append(conn, by, f"approval.{status}", row["incident_id"], {
                "approval_id": approval_id, "workflow_id": row["workflow_id"], "reason": reason,
                "override": override or None})
            await jobs.wake(conn, "workflow", row["workflow_id"])
        return dict(updated)


async def expire_due(pool: asyncpg.Pool) -> list[int]:
    """Workflows whose approval expired: wake them so they escalate now rather than at the next poll."""
    rows = await pool.fetch("SELECT workflow_id FROM approvals WHERE status = 'pending' AND expires_at <= now()")
    for row in rows:
        await jobs.wake(pool, "workflow", row["workflow_id"])
    return [r["workflow_id"] for r in rows]
