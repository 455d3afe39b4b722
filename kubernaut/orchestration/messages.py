"""What the orchestrator tells humans: the approval request and the end of a workflow, as notification text."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kubernaut.storage.workflows import ActionSummary, PlanStep, Proposal

_SEVERITY = {"completed": "success", "failed": "failure", "rolled_back": "failure", "timed_out": "failure",
             "blocked": "warning", "denied": "warning", "review": "warning", "cancelled": "info"}


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    event: str
    title: str
    body: str
    severity: str


# What a rehearsal approval (execution.dry_run_approvals) says wherever it is shown: approving it changes nothing.
REHEARSAL = "dry-run rehearsal"
REHEARSAL_NOTE = ("Dry-run rehearsal: execution.mode is dry-run, so approving changes nothing; the decision is "
                  "recorded as it would be live.")


def approval_requested(incident_id: int, proposal: Proposal, main: PlanStep, *, approval_id: int, why: str,
                       diff: str | None, ttl_s: float, rehearsal: bool = False) -> Message:
    return Message(
        event="approval.requested",
        title=f"[kubernaut] approval needed{f' ({REHEARSAL})' if rehearsal else ''}: {main.action} on {main.target}",
        body=(f"Incident #{incident_id}: {proposal.root_cause}\n"
              + (f"{REHEARSAL_NOTE}\n" if rehearsal else "")
              + f"Why approval: {why}\n"
              f"Approve: POST /api/v1/approvals/{approval_id}/approve  (expires in {ttl_s:.0f}s)\n"
              + (f"Dry-run diff:\n{diff}" if diff else "")),
        severity="warning",
    )


def workflow_finished(incident_id: int, proposal: Proposal, actions: list[ActionSummary], *, phase: str, why: str,
                      dry_run: bool) -> Message:
    mode = "DRY-RUN (nothing changed)" if dry_run else "LIVE"
    lines = [f"Incident #{incident_id}: {proposal.root_cause}",
             f"Decision: {proposal.action} on {proposal.target} [{mode}] → workflow {phase}: {why}",
             f"Engine: {proposal.engine} (confidence {proposal.confidence:.2f})"]
    for action in actions:
        lines.append(f"- {action.action}: {action.status}")
        lines.extend(f"    {step}" for step in action.plan[:6])
    if proposal.action == "notify_only" and proposal.parameters.get("reason"):
        lines.append(f"For the on-call: {proposal.parameters['reason']}")
    # Which measured outcomes moved the decision (kubernaut.analysis.learning).
    lines.extend(r for r in proposal.reasoning if r.startswith("learning:"))
    return Message(
        event=f"workflow.{phase}",
        title=f"[kubernaut] {proposal.action} on {proposal.target}: {phase}" + (" (dry-run)" if dry_run else ""),
        body="\n".join(lines), severity=_SEVERITY.get(phase, "info"),
    )
