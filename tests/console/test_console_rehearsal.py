"""A dry-run rehearsal approval (execution.dry_run_approvals) is marked as one wherever the console shows it: the
approval page (with the calls the dry-run planned when there is no diff), the approvals list, the waiting callout
and the timeline of its incident, and the ended workflow says why it ended. Fast tier: templates only; the whole
path on the running app in a real browser is tests/console/test_console_browser.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from kubernaut.execution.catalog.registry import CATALOG
from kubernaut.gateway.console import overrides, pages, render
from kubernaut.identity.chain import ANONYMOUS
from kubernaut.storage.approvals import ApprovalRecord

NOW = datetime.now(timezone.utc)


def approval(rehearsal: bool, **kw: Any) -> ApprovalRecord:
    return ApprovalRecord(**{
        "id": 3, "workflow_id": 1, "incident_id": 2, "status": "pending", "action": "increase_memory_limits",
        "target": {"kind": "Deployment", "name": "web", "namespace": "default"}, "parameters": {"factor": 1.5},
        "reason": "production needs confidence of at least 0.8 to act without approval", "dry_run_diff": None,
        "requested_at": NOW, "expires_at": NOW + timedelta(minutes=15), "decided_by": None, "decided_at": None,
        "decision_reason": None, "override_parameters": None, "used_at": None, "rehearsal": rehearsal, **kw})


def page(template: str, **values: Any) -> str:
    common = {"base": "", "principal": ANONYMOUS, "csrf": "c" * 43, "version": "0", "cluster": "local",
              "dry_run": True, "refresh_ms": 3000, "signed_in": False, "flash": None}
    return render.environment().get_template(template).render(**{**common, **values})


def test_the_approval_page_and_list_mark_a_rehearsal_and_nothing_else() -> None:
    spec = CATALOG["increase_memory_limits"].document()
    fields = overrides.fields(spec["parameters_schema"], {"factor": 1.5})
    planned = ["PATCH apps/v1 Deployment default/web (memory limits x 1.5)"]
    html = page("approval.html", nav="approvals", approval=approval(True), spec=spec, may_decide=True,
                fields=fields, planned=planned)
    assert 'id="rehearsal-note"' in html and "changes nothing in the cluster" in html
    assert "execution.dry_run_approvals" in html and "Approve (rehearsal)" in html
    assert "PATCH apps/v1 Deployment default/web" in html  # no diff without a cluster: the planned calls instead
    live = page("approval.html", nav="approvals", approval=approval(False), spec=spec, may_decide=True,
                fields=fields, planned=[])
    assert "rehearsal" not in live and 'id="approve-button" class="approve">Approve</button>' in live

    rows = page("_approval_rows.html", approvals=[approval(True).model_dump(), approval(False, id=4).model_dump()],
                status_filter=None, digest="d")
    assert rows.count("dry-run rehearsal") == 1


def test_the_incident_shows_the_waiting_rehearsal_its_timeline_and_the_outcome() -> None:
    waiting = approval(True)
    incident = {"id": 2, "target": {"kind": "Deployment", "name": "web", "namespace": "default"}, "status": "open",
                "phase": "dry_run_completed", "severity": "warning", "environment": "unknown", "priority": "P2",
                "signals": ["KubeContainerOOMKilled"], "firing_alerts": 1, "occurrence_count": 1, "first_seen": NOW,
                "last_seen": NOW, "alerts": [], "analyses": [], "analysis": None,
                "workflows": [{"id": 1, "phase": "completed", "dry_run": True, "decision": {}, "error": None,
                               "plan": [], "steps": []}],
                "workflow": {"id": 1, "phase": "completed", "dry_run": True}, "actions": [], "assessments": [],
                "notifications": [], "page": {"alerts_total": 0, "audit_total": 2},
                "audit": [{"at": NOW, "actor": "orchestrator", "event": "workflow.created",
                           "detail": {"workflow_id": 1}},
                          {"at": NOW, "actor": "orchestrator", "event": "workflow.completed",
                           "detail": {"workflow_id": 1, "reason": "approved by anonymous:anonymous; execution "
                                                                   "mode is dry-run: nothing was changed"}}]}
    decided = approval(True, status="used", decided_by="anonymous:anonymous", decided_at=NOW)
    timeline = pages.timeline(incident, [decided])
    texts = [e["text"] for e in timeline if e["kind"] == "approval"]
    assert texts == ["approval 3 requested: increase_memory_limits (dry-run rehearsal: approving changes nothing)",
                     "approval 3 used by anonymous:anonymous (dry-run rehearsal: approving changes nothing)"]
    outcomes = pages.outcomes(incident)
    assert outcomes == {1: "approved by anonymous:anonymous; execution mode is dry-run: nothing was changed"}
    html = page("_incident_live.html", incident=incident, approvals=[waiting], timeline=timeline, digest="d",
                outcomes=outcomes)
    assert "is waiting (dry-run rehearsal: approving changes nothing)" in html
    assert 'id="workflow-outcome-1"' in html and "execution mode is dry-run: nothing was changed" in html
    assert "rehearsal" not in pages.timeline(incident, [approval(False)])[0]["text"]
