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
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from kubernaut.cluster.fleet import target_key
from kubernaut.config.settings import KubernautConfig
from kubernaut.execution.catalog import CatalogError, get_action, validate_request
from kubernaut.intelligence.models import ClusterScope
from kubernaut.models.jobs import ActionRef, JobKind
from kubernaut.models.principal import Principal
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signature import signature_of
from kubernaut.models.workflow import ActionRequest, ActionResult
from kubernaut.observability import metrics
from kubernaut.orchestration import approvals as approval_rules
from kubernaut.orchestration import autonomy, blocking, gitops_flow, messages, verdict
from kubernaut.orchestration.approvals import ApprovalError as ApprovalError
from kubernaut.orchestration.approvals import DecisionSource
from kubernaut.orchestration.plans import plan_for
from kubernaut.orchestration.policy import load_policy
from kubernaut.orchestration.verdict import Verdict
from kubernaut.storage import approvals, audit, incidents, jobs, notifications, workflows
from kubernaut.storage.approvals import ApprovalRecord
from kubernaut.storage.database import Database
from kubernaut.storage.jobs import Reschedule
from kubernaut.storage.workflows import TERMINAL, IncidentFacts, PlanStep, Proposal, StepRecord, WorkflowRecord

logger = logging.getLogger(__name__)

__all__ = ["TERMINAL", "ApprovalError", "AssessmentPort", "ExecutorPort", "WorkflowEngine"]

_INCIDENT_PHASE = {"failed": "action_failed", "rolled_back": "rolled_back", "blocked": "blocked",
                   "cancelled": "cancelled", "timed_out": "escalated", "denied": "denied", "review": "human_review",
                   "declined": "declined"}


class ExecutorPort(Protocol):
    async def execute(self, request: ActionRequest) -> ActionResult: ...

    async def verify(self, action_id: int) -> dict[str, Any]: ...


class AssessmentPort(Protocol):
    async def assessment(self, action_id: int) -> dict[str, Any] | None: ...


@dataclass
class _Run:
    """One advance of one workflow: what it read once at the start, and the steps recorded since."""

    workflow: WorkflowRecord
    proposal: Proposal
    incident: IncidentFacts
    plan: list[PlanStep]  # the workflow's plan, with an approved override once there is one
    steps: dict[str, StepRecord]

    @property
    def id(self) -> int:
        return self.workflow.id

    @property
    def incident_id(self) -> int:
        return self.workflow.incident_id

    def verdict(self) -> Verdict:
        return Verdict.model_validate(self.steps["policy"].detail)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class WorkflowEngine:
    def __init__(self, db: Database, executor: ExecutorPort, config: KubernautConfig,
                 on_notification: Callable[[], None] = lambda: None,
                 assessments: AssessmentPort | None = None, gitops: gitops_flow.GitOpsPort | None = None) -> None:
        self.db = db
        self.gitops = gitops  # Git, forges and synced state for GitOps-managed targets (issue 15)
        self.executor = executor
        self.assessments = assessments
        self.config = config
        self.cfg = config.orchestration
        self.policy = load_policy(self.cfg.policy_file)
        self._on_notification = on_notification

    def _learning_scope(self, incident: IncidentFacts) -> ClusterScope | None:
        """In a fleet the autonomy evidence is the incident's cluster's (the fleet a weaker prior); None on one
        cluster, where every outcome is its own (unchanged)."""
        if not self.config.fleet.clusters:
            return None
        return ClusterScope(cluster=incident.cluster or self.config.home_cluster, home=self.config.home_cluster,
                            prior_cases=self.config.fleet.prior_cases)

    def _key(self, target: ResourceRef, incident: IncidentFacts) -> str:
        """Blocking rules and one-workflow-per-target are per cluster (the home cluster's keys are unchanged)."""
        return target_key(target.key, incident.cluster, self.config.home_cluster)

    # --- creation ------------------------------------------------------------------------------

    async def start(self, analysis_id: int) -> int | None:
        """The workflow of an analysis, created once (its ``workflow`` job then advances it); None when the analysis
        is gone."""
        pool = self.db.pool
        subject = await workflows.subject(pool, analysis_id)
        if subject is None:
            return None
        proposal, incident = subject.proposal, subject.incident
        planned = plan_for(proposal.action, proposal.target, proposal.parameters)
        signature = signature_of(incident.signals, incident.target_kind)
        async with pool.acquire() as conn, conn.transaction():
            workflow_id, created = await workflows.create(
                conn, incident_id=incident.id, analysis_id=analysis_id, dry_run=self.config.dry_run,
                target_key=self._key(proposal.target, incident), plan=[p.model_dump(mode="json") for p in planned],
                signature=signature)
            if created:
                await audit.append(conn, "orchestrator", "workflow.created", incident.id, {
                    "workflow_id": workflow_id, "dry_run": self.config.dry_run,
                    "plan": [f"{p.action} on {proposal.target}" for p in planned]})
        return workflow_id

    # --- the state machine ---------------------------------------------------------------------

    async def advance(self, workflow_id: int) -> None:
        """Run steps until the workflow ends or must wait (Reschedule); its ``workflow`` job calls it."""
        pool = self.db.pool
        wf = await workflows.get(pool, workflow_id)
        if wf is None or wf.phase in TERMINAL:
            return
        subject = await workflows.subject(pool, wf.analysis_id)
        if subject is None:
            raise LookupError(f"workflow {workflow_id}: analysis {wf.analysis_id} not found")
        run = _Run(wf, subject.proposal, subject.incident, list(wf.plan), await workflows.finished_steps(pool, wf.id))

        if "policy" not in run.steps:
            if not wf.dry_run:
                await self._one_workflow_per_target(wf)
            ruling = await self._decide(run)
            await self._record(run, "policy", "succeeded", ruling.detail())
            await self._set_phase(run, "executing")
        decision = run.verdict()

        # Dry-runs always run (they change nothing): whoever reviews, approves or audits sees the exact diff.
        for index, planned in enumerate(run.plan):
            name = f"dry_run:{index}"
            if name not in run.steps:
                result = await self._call(run, name, planned, dry_run=True)
                if result.status not in ("dry_run", "succeeded"):
                    return await self._finish(run, "failed", f"dry-run of {planned.action} "
                                              f"{result.status}: {result.error or result.message}")

        if decision.outcome in ("denied", "review", "blocked"):
            return await self._finish(run, decision.outcome, decision.reason)
        # GitOps-managed targets: live, propose (a change in Git, never a live one) or live-and-propose.
        gitops = await gitops_flow.route(self, run)
        if wf.dry_run:
            note = "execution mode is dry-run: nothing was changed"
            # Approval rehearsal: the approval live would wait for (not a GitOps PR's review) is requested for
            # real, and its decision ends the workflow; nothing below this branch runs in dry-run.
            rehearse = (decision.outcome == "require_approval" and gitops["mode"] == "live"
                        and self.config.execution.dry_run_approvals)
            if rehearse:
                if "approval" not in run.steps and not await self._approval(run):
                    return  # rejected, expired or cancelled: the workflow ended there
                approved = run.steps["approval"].detail
                override = f" with override {approved['override']}" if approved.get("override") else ""
                note = f"approved by {approved.get('by')}{override}; {note}"
            elif decision.outcome == "require_approval":
                note += f" (live, this would wait for approval: {decision.reason})"
            if gitops["mode"] != "live":
                note += f" (GitOps: {gitops['mode']}: {gitops['reason']})"
            return await self._finish(run, "completed", note)
        if gitops["mode"] != "live":
            # The PR's review is the human decision in propose mode; a fallback may still need an approval.
            if await gitops_flow.drive(self, run, gitops) == "ended":
                return
            gitops = run.steps["gitops"].detail
        needs_approval = decision.outcome == "require_approval" or gitops.get("fallback") == "approval"
        if needs_approval and "approval" not in run.steps:
            if not await self._approval(run):
                return
        # live-and-propose: the owner's self-heal is paused first (through the catalog), else no live change.
        live_and_propose = gitops["mode"] == "live-and-propose" and not gitops.get("fallback")
        if live_and_propose and not await gitops_flow.pause_self_heal(self, run, gitops):
            await gitops_flow.follow_after_live(self, run)
            return

        for index, planned in enumerate(run.plan):
            name = f"execute:{index}"
            if name not in run.steps:
                await self._set_phase(run, "executing")
                result = await self._execute_step(run, name, planned)
                if result.status != "succeeded":
                    return await self._rollback(run, f"{planned.action} {result.status}: "
                                                f"{result.error or result.message}")
            verify_name = f"verify:{index}"
            if get_action(planned.action).mutates and verify_name not in run.steps:
                await self._set_phase(run, "verifying")
                passed, detail = await self._verify_step(run.steps[name])
                if not passed and not detail.get("reverted_by_gitops"):  # the GitOps controller put Git's back?
                    detail = await gitops_flow.reverted_live(self, run, planned, run.steps[name], detail)
                await self._record(run, verify_name, "succeeded" if passed else "failed", detail)
                if not passed and detail.get("reverted_by_gitops"):
                    # The controller already put Git's value back: nothing to roll back, the change belongs in Git.
                    return await self._finish(run, "failed", f"{planned.action} was reverted by the GitOps controller "
                                              f"({detail.get('reason')}): escalated; propose it in Git instead")
                if not passed:
                    return await self._rollback(run, f"verification of {planned.action} failed: "
                                                f"{detail.get('reason', '')}")
        if live_and_propose:  # the live fix holds; the PR is followed until Git has it, then self-heal resumes
            await gitops_flow.follow_after_live(self, run)
            return
        return await self._finish(run, "completed", "remediation executed and verified")

    # --- steps ---------------------------------------------------------------------------------

    async def _decide(self, run: _Run) -> Verdict:
        """Decide, and record the block that stopped the workflow, if one did."""
        proposal, wf = run.proposal, run.workflow
        ruling = await self._ruling(proposal, run.incident, wf)
        if ruling.block is not None:
            await workflows.record_block(self.db.pool, target_key=self._key(proposal.target, run.incident),
                                         action=ruling.facts.action,
                                         rule=ruling.block.rule, reason=ruling.block.reason,
                                         until=ruling.block.until, workflow_id=wf.id)
        return ruling

    async def _ruling(self, proposal: Proposal, incident: IncidentFacts, wf: WorkflowRecord) -> Verdict:
        """The whole decision on one proposal: gather what it needs (the target's recent outcomes, the autonomy
        evidence) and run policy, blocking and autonomy (orchestration/verdict.py). An approval's override is
        judged by the same call, with the overridden parameters."""
        now = _now()
        facts = verdict.policy_facts(proposal, incident)
        block, evidence = None, None
        if facts.mutates:
            async with self.db.pool.acquire() as conn:
                since = now - timedelta(seconds=blocking.window_s(self.cfg))
                history = await workflows.recent_outcomes(conn, self._key(proposal.target, incident), since)
                block = blocking.check(self.cfg, history, facts.action, proposal.parameters, now)
                evidence = await autonomy.measure(conn, wf.signature or "", facts.action, self.cfg.autonomy_min_cases,
                                                  self.cfg.autonomy_min_lower_bound, self._learning_scope(incident))
        return verdict.decide(self.policy, facts, block=block, evidence=evidence, dry_run=wf.dry_run,
                              unknown_environment=self.cfg.unknown_environment, now=now)

    async def _one_workflow_per_target(self, wf: WorkflowRecord) -> None:
        other = await workflows.active_before(self.db.pool, wf.target_key, wf.id)
        if other is not None:
            raise Reschedule(5.0, f"workflow {other} is still working on this target")

    async def _call(self, run: _Run, name: str, planned: PlanStep, *, dry_run: bool, attempt: int = 0
                    ) -> ActionResult:
        request = ActionRequest(
            workflow_id=run.id, incident_id=run.incident_id, action=planned.action, target=planned.target,
            parameters=planned.parameters,
            idempotency_key=f"workflow-{run.id}-{name}" + (f"-a{attempt}" if attempt else ""),
            dry_run=dry_run, inverse_of=planned.inverse_of, cluster=run.incident.cluster,
        )
        try:
            result = await asyncio.wait_for(self.executor.execute(request), timeout=self.cfg.step_timeout_s)
        except asyncio.TimeoutError:
            # It may still act: the same key next time returns whatever it recorded.
            raise Reschedule(5.0, f"{name}: executor did not answer within {self.cfg.step_timeout_s:.0f}s") from None
        if dry_run or result.status not in ("failed",):
            await self._record(run, name, "succeeded" if result.status in ("dry_run", "succeeded") else "failed",
                               result.model_dump(mode="json"), action_id=result.action_id,
                               kind="action", attempts=attempt + 1)
        return result

    async def _execute_step(self, run: _Run, name: str, planned: PlanStep) -> ActionResult:
        attempt = await workflows.failed_attempts(self.db.pool, f"workflow-{run.id}-{name}")
        result = await self._call(run, name, planned, dry_run=False, attempt=attempt)
        if result.status == "succeeded" and get_action(planned.action).mutates:
            # The effectiveness monitor takes its baseline now and scores after its stabilization window.
            await jobs.enqueue(self.db.pool, JobKind.ASSESS, ActionRef(action_id=result.action_id))
        if result.status == "failed":
            retryable = bool(getattr(result, "retryable", False))
            if retryable and attempt + 1 < self.cfg.step_max_attempts:
                raise Reschedule(min(300.0, 2.0 ** (attempt + 1)), f"{name} failed transiently: {result.error}")
            await self._record(run, name, "failed", result.model_dump(mode="json"),
                               action_id=result.action_id, kind="action", attempts=attempt + 1)
        return result

    async def _verify_step(self, executed: StepRecord) -> tuple[bool, dict[str, Any]]:
        if executed.finished_at is None or executed.action_id is None:
            raise LookupError(f"step {executed.name} of workflow {executed.workflow_id} recorded no action")
        action_id = executed.action_id
        ready_at = executed.finished_at + timedelta(seconds=self.cfg.stabilization_s)
        if _now() < ready_at:
            raise Reschedule((ready_at - _now()).total_seconds(), "stabilization window")
        try:
            outcome = await asyncio.wait_for(self.executor.verify(action_id), timeout=self.cfg.step_timeout_s)
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
        assessment = await self.assessments.assessment(action_id)
        if assessment is None or assessment.get("status") == "pending":
            if _now() < deadline:
                raise Reschedule(self.cfg.verify_interval_s, "waiting for the effectiveness assessment")
            return True, {**detail, "assessment": None,
                          "reason": detail["reason"] + "; no effectiveness assessment in time (not scored)"}
        detail["assessment"] = {k: assessment.get(k) for k in ("status", "verdict", "score", "reasons")}
        if assessment.get("verdict") == "reverted_by_gitops":
            return False, {**detail, "reverted_by_gitops": True,
                           "reason": "; ".join(r for r in assessment.get("reasons") or [] if "gitops" in r.lower())}
        if assessment.get("verdict") == "ineffective":
            return False, {**detail, "reason": f"the action was ineffective (score {assessment.get('score')}): "
                                               + "; ".join(assessment.get("reasons") or [])}
        return True, detail

    async def _approval(self, run: _Run) -> bool:
        """Wait for a human. True: go on with ``run.plan`` (with an approved override); False: the workflow
        ended."""
        main = run.plan[-1]
        why_approval = run.verdict().reason
        gitops = run.steps["gitops"].detail if "gitops" in run.steps else {}
        if gitops.get("fallback") == "approval":
            why_approval = (f"{gitops.get('gitops', {}).get('tool')} owns the target and the change cannot be made "
                            f"in Git ({gitops.get('fallback_reason')}): a live change needs approval; {why_approval}")
        async with self.db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            approval = await approvals.for_workflow(conn, run.id)
            wait_s: float | None
            if approval is None:
                dry_run = run.steps.get(f"dry_run:{len(run.plan) - 1}")
                diff = dry_run.detail.get("diff") if dry_run is not None else None
                required = approval_rules.approvers_required(run.verdict().facts.risk,
                                                             self.cfg.approvals.two_person_for)
                approval_id = await approvals.create(
                    conn, workflow_id=run.id, incident_id=run.incident_id, action=main.action,
                    target=main.target.model_dump(mode="json"), parameters=main.parameters, reason=why_approval,
                    diff=diff, expires_at=_now() + timedelta(seconds=self.cfg.approval_ttl_s),
                    requested_by=approval_rules.SYSTEM_REQUESTER, approvals_required=required,
                )
                await workflows.set_phase(conn, run.id, "awaiting_approval")
                await incidents.set_phase(conn, run.incident_id, "awaiting_approval")
                await audit.append(conn, "orchestrator", "approval.requested", run.incident_id,
                                   {"approval_id": approval_id, "workflow_id": run.id, "action": main.action,
                                    "requested_by": approval_rules.SYSTEM_REQUESTER, "approvals_required": required,
                                    **({"rehearsal": True} if run.workflow.dry_run else {})})
                message = messages.approval_requested(run.incident_id, run.proposal, main, approval_id=approval_id,
                                                      why=why_approval, diff=diff, ttl_s=self.cfg.approval_ttl_s,
                                                      rehearsal=run.workflow.dry_run)
                await notifications.create(conn, run.incident_id, message.event, title=message.title,
                                           body=message.body, severity=message.severity, approval_id=approval_id)
                wait_s = min(5.0, self.cfg.approval_ttl_s)
            elif approval.status == "pending":
                remaining = (approval.expires_at - _now()).total_seconds()
                wait_s = min(5.0, remaining) if remaining > 0 else None
            else:
                wait_s = None
            if approval is not None and approval.status == "pending" and wait_s is None:
                await approvals.expire(conn, approval.id)
                metrics.approval_decided("expired", run.incident.cluster)
                await audit.append(conn, "orchestrator", "approval.expired", run.incident_id,
                                   {"approval_id": approval.id})
                approval = await approvals.for_workflow(conn, run.id)
            if approval is not None and approval.status == "approved":
                if not await approvals.use(conn, approval.id):
                    wait_s = 1.0  # another replica is using it right now
                else:
                    await audit.append(conn, "orchestrator", "approval.used", run.incident_id,
                                       {"approval_id": approval.id, "by": approval.decided_by})
        # Waiting is decided inside the transaction but signalled outside it, so the request commits.
        if approval is None or wait_s is not None:
            if approval is None:
                self._on_notification()
            raise Reschedule(wait_s or 1.0, "waiting for approval")
        return await self._take_decision(run, approval)

    async def _take_decision(self, run: _Run, approval: ApprovalRecord) -> bool:
        """Act on a decided approval: end the workflow (rejected, expired) or go on with the approved plan."""
        status = approval.status
        if status in ("expired", "rejected", "cancelled"):
            phase = "timed_out" if status == "expired" else "cancelled"
            why = (f"approval {approval.id} expired without a decision: escalated" if status == "expired" else
                   f"rejected by {approval.decided_by}: {approval.decision_reason or 'no reason given'}")
            await self._record(run, "approval", status, {"approval_id": approval.id, "reason": why})
            await self._finish(run, phase, why)
            return False
        override = approval.override_parameters
        if override:
            main = run.plan[-1]
            run.plan = [*run.plan[:-1], main.model_copy(update={"parameters": {**main.parameters, **override}})]
            async with self.db.pool.acquire() as conn, conn.transaction():
                await jobs.fence(conn)
                await workflows.set_plan(conn, run.id, [p.as_json() for p in run.plan])
            result = await self._call(run, "dry_run:override", run.plan[-1], dry_run=True)
            if result.status != "dry_run":
                await self._finish(run, "failed", f"dry-run with the approved override {result.status}: "
                                   f"{result.error or result.message}")
                return False
        await self._record(run, "approval", "succeeded", {
            "approval_id": approval.id, "by": approval.decided_by, "reason": approval.decision_reason,
            "override": override})
        return True

    async def _rollback(self, run: _Run, why: str) -> None:
        await gitops_flow.resume_self_heal(self, run, f"the live fix is undone: {why}")
        undone: list[str] = []
        impossible: list[str] = []
        for index in reversed(range(len(run.plan))):
            executed = run.steps.get(f"execute:{index}")
            if executed is None or executed.status != "succeeded":
                continue
            recorded_inverse = executed.detail.get("inverse")
            if not recorded_inverse:
                if get_action(run.plan[index].action).mutates:
                    impossible.append(run.plan[index].action)
                continue
            inverse = PlanStep.model_validate(recorded_inverse)
            name = f"rollback:{index}"
            if name in run.steps:
                undone.append(inverse.action)
                continue
            result = await self._call(run, name, inverse, dry_run=False)
            if result.status != "succeeded":
                await self._record(run, name, "failed", result.model_dump(mode="json"),
                                   action_id=result.action_id, kind="action")
                return await self._finish(run, "failed",
                                          f"{why}; rollback by {inverse.action} failed too: {result.error}: "
                                          "escalated to a human")
            undone.append(inverse.action)
            metrics.action_executed(run.plan[index].action, "rolled_back", dry_run=False,
                                    cluster=run.incident.cluster)
        if undone:
            note = f"{why}; rolled back by {', '.join(undone)}"
            if impossible:
                note += f" ({', '.join(impossible)} has no inverse)"
            return await self._finish(run, "rolled_back", note + ": escalated to a human")
        return await self._finish(run, "failed", f"{why}; nothing to roll back: escalated to a human")

    # --- bookkeeping ---------------------------------------------------------------------------

    async def _record(self, run: _Run, name: str, status: str, detail: dict[str, Any], *,
                      action_id: int | None = None, kind: str = "control", attempts: int = 1) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            step = await workflows.record_step(conn, run.id, name, status, detail, action_id=action_id, kind=kind,
                                               attempts=attempts)
        if step is not None:
            run.steps[name] = step

    async def _set_phase(self, run: _Run, phase: str) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            await workflows.set_phase(conn, run.id, phase)

    async def _finish(self, run: _Run, phase: str, why: str) -> None:
        wf = run.workflow
        async with self.db.pool.acquire() as conn, conn.transaction():
            await jobs.fence(conn)
            if not await workflows.finish(conn, wf.id, phase, None if phase == "completed" else why):
                return  # another replica ended it first
            # A completed plan that changes nothing (notify_only, diagnostics) handed the incident to a human:
            # calling it "remediated" would tell the on-call it is fixed.
            hands_off = not any(get_action(p.action).mutates for p in wf.plan)
            incident_phase = ("dry_run_completed" if wf.dry_run else "escalated" if hands_off else "remediated") \
                if phase == "completed" else _INCIDENT_PHASE[phase]
            await incidents.set_phase(conn, wf.incident_id, incident_phase)
            await audit.append(conn, "orchestrator", f"workflow.{phase}", wf.incident_id,
                               {"workflow_id": wf.id, "reason": why})
            message = messages.workflow_finished(wf.incident_id, run.proposal, await workflows.actions_of(conn, wf.id),
                                                 phase=phase, why=why, dry_run=wf.dry_run)
            await notifications.create(conn, wf.incident_id, message.event, title=message.title, body=message.body,
                                       severity=message.severity)
            await workflows.record_step(conn, wf.id, "notify", "succeeded", {"event": message.event}, attempts=0,
                                        overwrite=False)
        self._on_notification()

    # --- approvals API -------------------------------------------------------------------------

    async def decide(self, approval_id: int, approve: bool, principal: dict[str, Any] | Principal,
                     reason: str | None, override: dict[str, Any] | None,
                     source: dict[str, Any] | None = None) -> dict[str, Any]:
        """One authenticated principal's decision (``Principal.model_dump(mode="json")`` from the gateway, which
        checked that it may decide in the target's namespace; ``source``: {address, user_agent} of the request).
        Raises ApprovalError (its ``status`` is the HTTP answer); every refusal is audited and counted."""
        src = approval_rules.source_of(source)
        who: Principal | None = None
        try:
            who = approval_rules.principal_of(principal)
            decided = await self._decide_approval(approval_id, approve, who, src, reason, override)
        except ApprovalError as refused:
            try:
                await approval_rules.record_refusal(self.db.pool, approval_id, who, src, refused, approve)
            except Exception:  # the refusal stands (and is answered) even when it cannot be audited
                logger.exception("approval %s: refusal not audited: %s", approval_id, refused)
            raise
        return decided.model_dump()

    async def _decide_approval(self, approval_id: int, approve: bool, who: Principal, src: DecisionSource,
                               reason: str | None, override: dict[str, Any] | None) -> ApprovalRecord:
        pending = approval_rules.check_open(await approvals.get(self.db.pool, approval_id), approval_id)
        if not approve:
            return await approval_rules.commit(self.db.pool, approval_id, False, who, src, reason, override,
                                               required=pending.approvals_required)
        approval_rules.check_approver(pending, who)
        override = approval_rules.held_override(pending, override)
        required, checked = pending.approvals_required, None
        if override:
            required, checked = await self._check_override(pending, override)
        return await approval_rules.commit(self.db.pool, approval_id, True, who, src, reason, override,
                                           required=required, checked=checked)

    async def _check_override(self, pending: ApprovalRecord, override: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """An override is a new plan: it gets the whole decision again (policy, blocking, environment rules, on
        the same incident facts) and a fresh server-side dry-run. Refused (ApprovalError) unless both would let
        it run with the approval it is getting; returns the approvers it needs and what the checks found."""
        wf = await workflows.get(self.db.pool, pending.workflow_id)
        subject = None if wf is None else await workflows.subject(self.db.pool, wf.analysis_id)
        if wf is None or subject is None:
            raise ApprovalError(f"approval {pending.id}: its workflow is gone", status=409, reason="conflict")
        parameters = {**pending.parameters, **override}
        try:
            validate_request(pending.action, ResourceRef.model_validate(pending.target), parameters)
        except CatalogError as exc:
            raise ApprovalError(f"override refused: {exc}", status=422, reason="invalid_override") from None
        proposal = subject.proposal.model_copy(update={
            "action": pending.action, "target": ResourceRef.model_validate(pending.target), "parameters": parameters})
        ruling = await self._ruling(proposal, subject.incident, wf)
        if ruling.outcome in ("denied", "review", "blocked"):
            what = {"denied": "the policy denies", "review": "the policy sends to human review",
                    "blocked": "a blocking rule stops"}[ruling.outcome]
            raise ApprovalError(f"override refused: {what} {pending.action} with {override} "
                                f"(rule {ruling.rule}: {ruling.reason})", status=422,
                                reason=f"override_{ruling.outcome}")
        request = ActionRequest(
            workflow_id=wf.id, incident_id=wf.incident_id, action=pending.action, target=proposal.target,
            parameters=parameters, dry_run=True, cluster=subject.incident.cluster,
            # A fresh dry-run for each decision: the cluster may have changed since the last one.
            idempotency_key=f"workflow-{wf.id}-approval-{pending.id}-override-{uuid.uuid4().hex[:12]}")
        try:
            result = await asyncio.wait_for(self.executor.execute(request), timeout=self.cfg.step_timeout_s)
        except asyncio.TimeoutError:
            raise ApprovalError(f"override: the executor did not answer the dry-run within "
                                f"{self.cfg.step_timeout_s:.0f}s; try again", status=503,
                                reason="dry_run_unavailable") from None
        if result.status != "dry_run":
            raise ApprovalError(f"override refused: the server-side dry-run of {pending.action} with {override} "
                                f"was {result.status}: {result.error or result.message}", status=422,
                                reason="override_dry_run")
        required = max(pending.approvals_required,
                       approval_rules.approvers_required(ruling.facts.risk, self.cfg.approvals.two_person_for))
        return required, {"dry_run_action_id": result.action_id,
                          "policy": {"outcome": ruling.outcome, "rule": ruling.rule, "risk": ruling.facts.risk}}
