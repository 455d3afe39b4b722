"""What ``kubernaut incidents`` and ``kubernaut approvals`` print: rich tables and an incident's timeline.

The input is the REST API's JSON (``/api/v1/incidents``, ``/api/v1/incidents/{id}``, ``/api/v1/approvals``).
Every value goes into a :class:`rich.text.Text` as it is, never through rich's markup parser: alert annotations,
pod output and LLM text are untrusted, and ``[red]`` or a ``[link=...]`` in them must print as written.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "warning": "yellow", "medium": "yellow", "info": "cyan",
                  "low": "cyan"}
STATUS_STYLE = {"open": "bold", "resolved": "green", "closed": "dim", "pending": "bold yellow", "approved": "green",
                "rejected": "red", "expired": "dim", "used": "green", "cancelled": "dim", "succeeded": "green",
                "completed": "green", "failed": "red", "rolled_back": "red", "dry_run": "cyan", "refused": "red",
                "running": "yellow", "awaiting_approval": "bold yellow", "denied": "red", "blocked": "red"}


def when(value: Any, now: datetime | None = None) -> str:
    """A time as UTC, shortened to the clock when it is today."""
    moment = _parse_time(value)
    if moment is None:
        return "-"
    now = now or datetime.now(timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%H:%M:%S" if moment.date() == now.date() else "%Y-%m-%d %H:%M")


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def time_left(value: Any, now: datetime | None = None) -> str:
    moment = _parse_time(value)
    if moment is None:
        return "-"
    seconds = int((moment - (now or datetime.now(timezone.utc))).total_seconds())
    if seconds <= 0:
        return "expired"
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def target_text(target: Any) -> str:
    if not isinstance(target, dict):
        return "-"
    kind_name = "/".join(str(p) for p in (target.get("kind"), target.get("name")) if p)
    namespace = target.get("namespace")
    return f"{namespace}/{kind_name}" if namespace else kind_name or "-"


def styled(value: Any, styles: dict[str, str]) -> Text:
    text = "-" if value is None else str(value)
    return Text(text, style=styles.get(text, ""))


def plain(value: Any) -> Text:
    return Text("-" if value is None or value == "" else str(value))


def incidents_table(items: list[dict[str, Any]], now: datetime | None = None) -> Table:
    table = Table(title="Incidents", title_justify="left", expand=False, show_lines=False)
    for column, kwargs in (("#", {"justify": "right"}), ("status", {}), ("phase", {}), ("sev", {}), ("prio", {}),
                           ("target", {"overflow": "fold"}), ("alerts", {"overflow": "fold"}), ("action", {}),
                           ("last seen", {"no_wrap": True})):
        table.add_column(column, **kwargs)
    for item in items:
        analysis = item.get("analysis") or {}
        action = analysis.get("action")
        if action and analysis.get("confidence") is not None:
            action = f"{action} ({float(analysis['confidence']):.2f})"
        table.add_row(str(item["id"]), styled(item.get("status"), STATUS_STYLE),
                      styled(item.get("phase"), STATUS_STYLE), styled(item.get("severity"), SEVERITY_STYLE),
                      plain(item.get("priority")), plain(target_text(item.get("target"))),
                      plain(", ".join(item.get("signals") or [])), plain(action),
                      when(item.get("last_seen"), now))
    if not items:
        table.caption = "no incidents"
    return table


def approvals_table(items: list[dict[str, Any]], now: datetime | None = None) -> Table:
    table = Table(title="Approvals", title_justify="left")
    for column, kwargs in (("#", {"justify": "right"}), ("status", {}), ("incident", {"justify": "right"}),
                           ("action", {}), ("target", {"overflow": "fold"}), ("parameters", {"overflow": "fold"}),
                           ("why", {"overflow": "fold"}), ("left", {"no_wrap": True}),
                           ("decided by", {"overflow": "fold"})):
        table.add_column(column, **kwargs)
    for item in items:
        pending = item.get("status") == "pending"
        table.add_row(str(item["id"]), styled(item.get("status"), STATUS_STYLE), str(item.get("incident_id", "-")),
                      plain(item.get("action") + (" (dry-run rehearsal)" if item.get("rehearsal") else "")
                            if item.get("action") else None), plain(target_text(item.get("target"))),
                      plain(_compact(item.get("override_parameters") or item.get("parameters"))),
                      plain(item.get("reason")),
                      time_left(item.get("expires_at"), now) if pending else "-",
                      plain(item.get("decided_by")))
    if not items:
        table.caption = "no approvals"
    return table


def _compact(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _first_line(value: Any, limit: int = 200) -> str:
    text = str(value or "").strip().splitlines()[0] if str(value or "").strip() else ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timeline_events(view: dict[str, Any]) -> list[tuple[Any, str, Text]]:
    """(time, source, what) for every record of an incident, oldest first."""
    events: list[tuple[Any, str, Text]] = []
    for alert in view.get("alerts") or []:
        annotations = alert.get("annotations") or {}
        line = Text(f"{alert.get('alertname')} {alert.get('status')}", style=STATUS_STYLE.get(alert.get("status"), ""))
        note = annotations.get("summary") or annotations.get("description")
        if note:
            line.append(f"  {_first_line(note)}", style="italic")
        events.append((alert.get("received_at"), "alert", line))
    for analysis in view.get("analyses") or []:
        line = Text(f"{analysis.get('action')} on {target_text(analysis.get('target'))} "
                    f"(engine {analysis.get('engine')}, confidence {float(analysis.get('confidence') or 0):.2f})")
        if analysis.get("justified_by"):
            line.append(f", justified by {analysis['justified_by']}")
        if analysis.get("root_cause"):
            line.append(f"\n{_first_line(analysis['root_cause'], 400)}", style="italic")
        events.append((analysis.get("created_at"), "analysis", line))
    for workflow in view.get("workflows") or []:
        for step in workflow.get("steps") or []:
            line = Text(f"{step.get('name')} ")
            line.append(str(step.get("status")), style=STATUS_STYLE.get(str(step.get("status")), ""))
            reason = (step.get("detail") or {}).get("reason") if isinstance(step.get("detail"), dict) else None
            if reason:
                line.append(f"  {_first_line(reason)}")
            events.append((step.get("started_at"), "step", line))
    for action in view.get("actions") or []:
        mode = "dry-run" if action.get("dry_run") else "LIVE"
        line = Text(f"{action.get('action')} [{mode}] on {target_text(action.get('target'))}: ")
        line.append(str(action.get("status")), style=STATUS_STYLE.get(str(action.get("status")), ""))
        if action.get("error"):
            line.append(f"  {_first_line(action['error'])}", style="red")
        events.append((action.get("created_at"), "action", line))
    for note in view.get("notifications") or []:
        events.append((note.get("created_at"), "notify",
                       Text(f"{note.get('event')}: {note.get('status')} ({note.get('attempts', 0)} attempts)")))
    for assessment in view.get("assessments") or []:
        score = assessment.get("score")
        events.append((assessment.get("assessed_at"), "verify",
                       Text(f"{assessment.get('action')}: {assessment.get('verdict') or assessment.get('status')}"
                            + (f" (score {float(score):.2f})" if score is not None else ""))))
    for event in view.get("audit") or []:
        events.append((event.get("at"), "audit", Text(f"{event.get('actor')}  {event.get('event')}", style="dim")))
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    events.sort(key=lambda e: _parse_time(e[0]) or epoch)
    return events


def incident_timeline(view: dict[str, Any], now: datetime | None = None) -> RenderableType:
    """One incident: a header, its timeline, and the diff of the latest action that has one."""
    header = Text()
    header.append(f"Incident #{view.get('id')}  ", style="bold")
    header.append(str(view.get("status")), style=STATUS_STYLE.get(str(view.get("status")), ""))
    header.append(f" / {view.get('phase') or '-'}\n")
    header.append(f"target    {target_text(view.get('target'))}\n")
    header.append(f"alerts    {', '.join(view.get('signals') or []) or '-'}\n")
    header.append(f"severity  {view.get('severity') or '-'}   priority {view.get('priority') or '-'}   "
                  f"environment {view.get('environment') or '-'}\n")
    header.append(f"seen      {when(view.get('first_seen'), now)} → {when(view.get('last_seen'), now)}"
                  f"  ({view.get('occurrence_count') or 1} times)")
    analysis = view.get("analysis")
    if analysis:
        header.append(f"\ndecision  {analysis.get('action')} ({analysis.get('engine')}, "
                      f"{float(analysis.get('confidence') or 0):.2f})")
    table = Table(show_header=True, box=None, pad_edge=False, expand=False)
    table.add_column("time", no_wrap=True, style="dim")
    table.add_column("", no_wrap=True, style="bold")
    table.add_column("what", overflow="fold")
    for at, source, line in timeline_events(view):
        table.add_row(when(at, now), source, line)
    parts: list[RenderableType] = [Panel(header, title=escape(f"kubernaut incident {view.get('id')}"),
                                         title_align="left"), table]
    diff = next((a.get("diff") for a in reversed(view.get("actions") or []) if a.get("diff")), None)
    if diff:
        parts.append(Panel(Syntax(str(diff), "diff", word_wrap=True), title="dry-run diff", title_align="left"))
    page = view.get("page") or {}
    shown = page.get("limit")
    if shown and max(page.get("alerts_total", 0), page.get("steps_total", 0), page.get("audit_total", 0)) > shown:
        parts.append(Text(f"(first {shown} alerts/steps/audit events shown; --json with the API's offset for more)",
                          style="dim"))
    return Group(*parts)
