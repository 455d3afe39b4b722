"""The incident page's GitOps panel (issue 15): the owner, the mode, the pull request with its state, URL and who
merged or closed it, the self-heal pause; all of it forge/cluster text, rendered escaped."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubernaut.gateway.console import render

EVIL = '<script>alert("x")</script>'
NOW = datetime(2026, 12, 5, 18, 0, tzinfo=timezone.utc)


def _incident(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": 9, "target": {"kind": "Deployment", "name": "shop", "namespace": "web"}, "status": "open",
            "phase": "remediating", "severity": "critical", "environment": "production", "priority": "P2",
            "signals": ["KubePodOOMKilled"], "firing_alerts": 1, "occurrence_count": 1, "first_seen": NOW,
            "last_seen": NOW, "classification": {}, "alerts": [], "analyses": [], "analysis": None,
            "workflows": [{"id": 4, "phase": "completed", "dry_run": False, "decision": None, "error": None,
                           "plan": [], "steps": steps}],
            "actions": [], "assessments": [], "notifications": [], "audit": [],
            "page": {"alerts_total": 0, "audit_total": 0}}


def _step(seq: int, name: str, detail: dict[str, Any], status: str = "succeeded") -> dict[str, Any]:
    return {"seq": seq, "name": name, "status": status, "detail": detail, "started_at": NOW, "finished_at": NOW}


def _render(steps: list[dict[str, Any]]) -> str:
    return render.environment().get_template("_incident_live.html").render(
        base="", incident=_incident(steps), approvals=[], timeline=[], digest="d", refresh_ms=3000)


OWNER = {"tool": "argocd", "app": f"shop{EVIL}", "app_namespace": "argocd", "repo": "https://git.example.com/org/d",
         "path": "apps/shop", "revision": "main", "auto_sync": True, "self_heal": True, "via": "tracking-id"}
ROUTE = _step(1, "gitops", {"mode": "live-and-propose", "rule": "r", "reason": f"argocd owns it {EVIL}",
                            "gitops": OWNER, "fallback": None})
PR = {"number": 12, "url": "https://git.example.com/org/d/pull/12", "state": "open", "head": "kubernaut/x"}
OPENED = _step(2, "propose:opened", {"proposed": {"pr": PR, "repository": "org/d", "branch": "kubernaut/x",
                                                  "base": "main", "files": ["apps/shop/deployment.yaml"]}})


def test_owner_mode_open_pr_and_paused_self_heal_are_shown_escaped() -> None:
    html = _render([ROUTE, OPENED, _step(3, "gitops:pause", {"inverse": {}})])
    assert 'id="gitops-4"' in html and "<script>" not in html
    assert f"argocd shop{EVIL}".replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;") in html
    assert "live-and-propose" in html and "https://git.example.com/org/d · apps/shop @ main" in html
    assert "#12" in html and 'status-open' in html
    assert '<a href="https://git.example.com/org/d/pull/12" rel="noopener noreferrer">' in html
    assert "paused since" in html and "merged by" not in html


def test_merged_pr_names_who_merged_and_the_resume() -> None:
    merged = {**PR, "state": "merged", "merged_by": f"carol{EVIL}"}
    html = _render([ROUTE, OPENED, _step(3, "gitops:pause", {}), _step(4, "propose", {"pr": merged}),
                    _step(5, "synced", {"seen": []}), _step(6, "gitops:resume", {})])
    assert "status-merged" in html and "merged by <strong>carol&lt;script&gt;" in html and "<script>" not in html
    assert "paused, resumed" in html


def test_closed_pr_names_who_closed_it_and_a_non_http_url_is_no_link() -> None:
    closed = {**PR, "state": "closed", "closed_by": "alice", "url": "javascript:alert(1)"}
    html = _render([ROUTE, OPENED, _step(3, "propose", {"pr": closed, "closed_by": "alice"}, status="declined")])
    assert "closed by <strong>alice</strong>" in html and "status-closed" in html
    assert 'href="javascript:' not in html and "javascript:alert(1)" in html


def test_a_workflow_without_gitops_has_no_panel() -> None:
    assert "gitops-4" not in _render([_step(1, "policy", {"outcome": "allow"})])
