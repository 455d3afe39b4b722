"""What `kubernaut incidents` and `kubernaut approvals` print (issue 13, section 4): rich tables and an incident's
timeline, from the REST API's JSON shapes (kubernaut/storage/views.py), captured with a recording Console."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from rich.console import Console

from kubernaut.terminal import render
from kubernaut.terminal.watch import follow

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
HOSTILE = "[bold red]IGNORE PREVIOUS INSTRUCTIONS[/bold red] [link=http://evil.example]click[/link]"


def printed(renderable: Any, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def incident(**overrides: Any) -> dict[str, Any]:
    base = {"id": 7, "status": "open", "phase": "awaiting_approval", "severity": "high", "priority": "P1",
            "environment": "production", "signals": ["KubeHpaMaxedOut"], "occurrence_count": 3,
            "first_seen": "2026-12-05T11:50:00Z", "last_seen": "2026-12-05T11:58:30Z",
            "target": {"kind": "Deployment", "name": "shop", "namespace": "payments"},
            "analysis": {"action": "scale_deployment", "engine": "rules", "confidence": 0.75}}
    return {**base, **overrides}


def test_the_incident_list_is_a_table_of_what_matters() -> None:
    text = printed(render.incidents_table([incident(), incident(id=6, status="resolved", analysis=None,
                                                                  last_seen="2026-12-01T08:00:00Z")], NOW))
    lines = [line for line in text.splitlines() if line.strip()]
    header = next(line for line in lines if "status" in line and "target" in line)
    for column in ("#", "phase", "sev", "prio", "alerts", "action", "last seen"):
        assert column in header
    seven = next(line for line in lines if line.lstrip("│ ").startswith("7 "))
    assert "payments/Deployment/shop" in seven and "scale_deployment (0.75)" in seven and "11:58:30" in seven
    assert "awaiting_approval" in seven and "P1" in seven and "KubeHpaMaxedOut" in seven
    six = next(line for line in lines if line.lstrip("│ ").startswith("6 "))
    assert "2026-12-01 08:00" in six and "resolved" in six  # not today: the date is shown
    assert "no incidents" in printed(render.incidents_table([], NOW))


def detail() -> dict[str, Any]:
    view = incident()
    view["analysis"] = {"action": "scale_deployment", "engine": "rules", "confidence": 0.75,
                        "target": view["target"], "root_cause": "HPA at max replicas", "justified_by": "hpa.maxed",
                        "created_at": "2026-12-05T11:50:02Z"}
    view.update({
        "alerts": [{"alertname": "KubeHpaMaxedOut", "status": "firing", "received_at": "2026-12-05T11:50:00Z",
                    "annotations": {"summary": HOSTILE}}],
        "analyses": [view["analysis"]],
        "workflows": [{"id": 1, "steps": [
            {"name": "policy", "status": "succeeded", "started_at": "2026-12-05T11:50:03Z",
             "detail": {"reason": "production needs approval"}},
            {"name": "approval", "status": "running", "started_at": "2026-12-05T11:50:05Z", "detail": {}}]}],
        "actions": [{"action": "scale_deployment", "dry_run": True, "status": "dry_run", "target": view["target"],
                     "created_at": "2026-12-05T11:50:04Z",
                     "diff": "--- a/spec\n+++ b/spec\n-  replicas: 2\n+  replicas: 3\n", "error": None}],
        "notifications": [{"event": "approval_requested", "status": "sent", "attempts": 1,
                           "created_at": "2026-12-05T11:50:06Z"}],
        "assessments": [],
        "audit": [{"at": "2026-12-05T11:50:01Z", "actor": "gateway", "event": "incident.created"}],
        "page": {"limit": 500, "offset": 0, "alerts_total": 1, "steps_total": 2, "audit_total": 1},
    })
    return view


def test_an_incident_is_a_readable_timeline_in_time_order() -> None:
    text = printed(render.incident_timeline(detail(), NOW))
    assert "Incident #7" in text and "payments/Deployment/shop" in text and "awaiting_approval" in text
    order = ["alert", "audit", "analysis", "step", "action", "step", "notify"]
    rows = [line.split()[1] for line in text.splitlines()
            if line[:8].count(":") == 2 and len(line.split()) > 1 and line.split()[1] in set(order)]
    assert rows == order, text
    assert "production needs approval" in text and "justified by hpa.maxed" in text
    assert "scale_deployment [dry-run] on payments/Deployment/shop: dry_run" in text
    assert "+  replicas: 3" in text and "dry-run diff" in text  # the latest diff, as a diff


def test_untrusted_text_prints_as_written_never_as_markup() -> None:
    """An annotation is data: rich markup in it is neither styled nor turned into a link."""
    console = Console(record=True, width=300, color_system="truecolor", force_terminal=True)
    console.print(render.incident_timeline(detail(), NOW))
    assert HOSTILE in console.export_text(styles=False, clear=False)
    styled = console.export_text(styles=True)
    assert "\x1b]8;" not in styled  # no OSC 8 hyperlink was emitted
    assert "http://evil.example" in styled  # ... the URL is only text


def test_approvals_show_time_left_and_the_decider() -> None:
    items = [{"id": 3, "status": "pending", "incident_id": 7, "action": "scale_deployment",
              "target": {"kind": "Deployment", "name": "shop", "namespace": "payments"},
              "parameters": {"replicas": 3}, "reason": "policy: production",
              "expires_at": (NOW + timedelta(minutes=14, seconds=5)).isoformat(), "decided_by": None},
             {"id": 2, "status": "approved", "incident_id": 6, "action": "restart_pod",
              "target": {"kind": "Pod", "name": "web-0", "namespace": "team-a"}, "parameters": {},
              "override_parameters": {"grace_period_s": 10}, "reason": "policy: risk high",
              "expires_at": NOW.isoformat(), "decided_by": "token:oncall"}]
    text = printed(render.approvals_table(items, NOW))
    three = next(line for line in text.splitlines() if line.lstrip("│ ").startswith("3 "))
    assert "pending" in three and "14m05s" in three and "replicas=3" in three and "policy: production" in three
    two = next(line for line in text.splitlines() if line.lstrip("│ ").startswith("2 "))
    assert "token:oncall" in two and "grace_period_s=10" in two  # the override is what runs
    assert "rehearsal" not in text
    rehearsal = printed(render.approvals_table([{**items[0], "rehearsal": True}], NOW))
    assert "rehearsal" in rehearsal  # a dry-run rehearsal (execution.dry_run_approvals) says so


def test_watch_renders_again_until_stopped_and_survives_a_failed_poll() -> None:
    polls = iter([render.incidents_table([incident(id=1)], NOW), ConnectionError("api down"),
                  render.incidents_table([incident(id=1), incident(id=2)], NOW)])

    def next_view() -> Any:
        item = next(polls)
        if isinstance(item, Exception):
            raise item
        return item

    # A terminal: Live draws every frame (elsewhere it prints only the last).
    console = Console(record=True, width=200, color_system=None, force_terminal=True)
    naps: list[float] = []
    follow(console, next_view, 0.5, retry_on=(ConnectionError,), refreshes=3, sleep=naps.append)
    text = console.export_text()
    assert naps == [0.5, 0.5]
    assert "cannot refresh: api down" in text
    last = text[text.rindex("Incidents"):]
    assert all(f"│ {i} " in last or f"{i} │" in last or f" {i} " in last for i in (1, 2))
