"""The console's pages: incidents, one incident's timeline, approvals (and the decision), the action catalog,
learning and the system. Each page reads what the REST route of the same resource reads (the same storage
views and deployment calls) under the same permission; ``.../rows`` and ``.../live`` are the fragments htmx
polls to keep a list or an open incident current."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import RedirectResponse, Response

from kubernaut.execution.catalog.registry import CATALOG
from kubernaut.gateway.console import overrides
from kubernaut.gateway.console.system import system_status
from kubernaut.gateway.console.web import (
    Refused,
    SignInRequired,
    Visit,
    console_of,
    enabled,
    error_page,
    secure_headers,
    sign_in_redirect,
    visit,
)
from kubernaut.gateway.routes.approvals import ApprovalDecision, decide
from kubernaut.gateway.routes.limits import MAX_ID
from kubernaut.gateway.services import GatewayServices, Services
from kubernaut.storage import approvals as approval_store
from kubernaut.storage import views, workflows

router = APIRouter(include_in_schema=False, dependencies=[Depends(enabled)])

STATUSES = ("open", "resolved", "closed")
PHASES = ("new", "analyzed", "analysis_failed", "awaiting_approval", "dry_run_completed", "remediated",
          "escalated", "workflow_failed")
SEVERITIES = ("critical", "high", "warning", "info", "unknown")
APPROVAL_ORDER = {"pending": 0}  # pending first, then the others, newest first
# What the page says after a decision (the orchestrator's answer: still pending means another approver is needed).
DECIDED = {"approved": "You approved: the workflow goes on.", "rejected": "You rejected: the workflow ends.",
           "pending": "Your approval is recorded; this one needs another approver (two-person rule)."}
REHEARSED = {"approved": "You approved the dry-run rehearsal: the workflow completes, and nothing is changed "
                         "(execution mode is dry-run)."}


def digest(value: Any) -> str:
    """What a polled fragment shows, summed up: the browser sends it back, and an unchanged fragment is a 204
    (htmx leaves the page alone, so focus, scroll and open details stay where they are)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def unchanged(request: Request, values: dict[str, Any]) -> bool:
    return request.query_params.get("v") == values["digest"]


def no_change() -> Response:
    return secure_headers(Response(status_code=204))


async def guarded(request: Request, svc: GatewayServices, build: Callable[[Visit], Awaitable[Response]]) -> Response:
    """Run a page for the session's principal: to sign-in without one, an error page on a refusal."""
    console = await console_of(svc)
    try:
        return await build(await visit(request, svc))
    except SignInRequired:
        return sign_in_redirect(request)
    except Refused as exc:
        return error_page(request, svc, console, exc.status, exc.message, exc.headers)


@router.get("/")
async def root(request: Request) -> Response:
    """``http://127.0.0.1:8000/`` is the console."""
    return RedirectResponse(f"{request.scope.get('root_path', '').rstrip('/')}/console/incidents", status_code=303)


@router.get("/console")
@router.get("/console/")
async def console_root(request: Request) -> Response:
    return RedirectResponse(f"{request.scope.get('root_path', '').rstrip('/')}/console/incidents", status_code=303)


# --- incidents ---------------------------------------------------------------------------------------------

def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


class IncidentFilters:
    def __init__(self, status: str | None, phase: str | None, namespace: str | None, severity: str | None,
                 q: str | None, page: int, cluster: str | None = None) -> None:
        self.status, self.phase, self.namespace = _blank(status), _blank(phase), _blank(namespace)
        self.severity, self.q, self.page, self.cluster = _blank(severity), _blank(q), page, _blank(cluster)

    def query(self, **changes: Any) -> str:
        values = {"status": self.status, "phase": self.phase, "namespace": self.namespace,
                  "cluster": self.cluster, "severity": self.severity, "q": self.q, "page": self.page, **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "") and not (k == "page" and v == 1)})


def incident_filters(
    status: str | None = Query(default=None, pattern="^(open|resolved|closed)?$"),
    phase: str | None = Query(default=None, max_length=40, pattern="^[a-z_]*$"),
    namespace: str | None = Query(default=None, max_length=63, pattern="^[a-z0-9-]*$"),
    severity: str | None = Query(default=None, pattern="^(critical|high|warning|info|unknown)?$"),
    q: str | None = Query(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"),
    page: int = Query(default=1, ge=1, le=100_000),
    # The fleet's cluster names, as GET /api/v1/incidents?cluster= takes them.
    cluster: str | None = Query(default=None, max_length=63, pattern=r"^([A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?)?$"),
) -> IncidentFilters:
    return IncidentFilters(status, phase, namespace, severity, q, page, cluster)


async def _incident_rows(v: Visit, f: IncidentFilters) -> dict[str, Any]:
    await v.require("list", "incidents")
    size = v.svc.config.console.page_size
    # One more than a page tells whether there is a next one.
    items = await views.list_incidents(v.svc.db.pool, status=f.status, namespace=f.namespace, phase=f.phase,
                                       severity=f.severity, text=f.q, cluster=f.cluster, limit=size + 1,
                                       offset=(f.page - 1) * size)
    shown = items[:size]
    return {"incidents": shown, "has_next": len(items) > size, "filters": f, "digest": digest(shown)}


Filters = Annotated[IncidentFilters, Depends(incident_filters)]


@router.get("/console/incidents")
async def incidents_page(request: Request, svc: Services, f: Filters) -> Response:
    async def build(v: Visit) -> Response:
        return v.render("incidents.html", nav="incidents", statuses=STATUSES, phases=PHASES, severities=SEVERITIES,
                        **await _incident_rows(v, f))
    return await guarded(request, svc, build)


@router.get("/console/incidents/rows")
async def incidents_rows(request: Request, svc: Services, f: Filters) -> Response:
    async def build(v: Visit) -> Response:
        values = await _incident_rows(v, f)
        return no_change() if unchanged(request, values) else v.render("_incident_table.html", **values)
    return await guarded(request, svc, build)


async def _incident(v: Visit, incident_id: int) -> dict[str, Any]:
    await v.require("get", "incidents")
    view = await views.incident_detail(v.svc.db.pool, incident_id)
    if view is None:
        raise Refused(404, f"incident {incident_id} not found")
    approvals = []
    for workflow in view["workflows"]:
        approval = await approval_store.for_workflow(v.svc.db.pool, workflow["id"])
        if approval is not None:
            approvals.append(approval)
    return {"incident": view, "approvals": approvals, "timeline": timeline(view, approvals),
            "outcomes": outcomes(view),
            "digest": digest([view, [a.model_dump() for a in approvals], int(time.time() // 30)])}


def outcomes(view: dict[str, Any]) -> dict[int, str]:
    """Why each ended workflow ended, as its end's audit event says (a completed workflow keeps no error; the
    note says e.g. that a dry-run changed nothing and who approved its rehearsal). Events past the page: none."""
    found: dict[int, str] = {}
    for e in view["audit"]:
        detail = e.get("detail") or {}
        if str(e.get("event", "")).startswith("workflow.") and e.get("event") != "workflow.created" \
                and isinstance(detail, dict) and detail.get("reason") and detail.get("workflow_id") is not None:
            found[int(detail["workflow_id"])] = str(detail["reason"])
    return found


def timeline(view: dict[str, Any], approvals: list[approval_store.ApprovalRecord]) -> list[dict[str, Any]]:
    """Everything that happened to the incident, in time order: (at, what, text) of each record."""
    events: list[dict[str, Any]] = []

    def add(at: Any, kind: str, text: str) -> None:
        if at is not None:
            events.append({"at": at, "kind": kind, "text": text})

    for a in view["alerts"]:
        add(a.get("received_at"), "alert", f"{a.get('alertname')} {a.get('status')} ({a.get('severity')})")
    for a in view["analyses"]:
        add(a.get("created_at"), "analysis", f"{a.get('engine')}: {a.get('action')} "
            f"(confidence {a.get('confidence')})")
    for wf in view["workflows"]:
        for s in wf["steps"]:
            add(s.get("started_at"), "step", f"workflow {wf['id']}: {s.get('name')} {s.get('status')}")
    for act in view["actions"]:
        mode = "dry-run" if act.get("dry_run") else "live"
        add(act.get("created_at"), "action", f"{act.get('action')} ({mode}) {act.get('status')}")
    for ap in approvals:
        rehearsal = " (dry-run rehearsal: approving changes nothing)" if ap.rehearsal else ""
        add(ap.requested_at, "approval", f"approval {ap.id} requested: {ap.action}{rehearsal}")
        if ap.decided_at is not None:
            add(ap.decided_at, "approval", f"approval {ap.id} {ap.status} by {ap.decided_by}{rehearsal}")
    for s in view["assessments"]:
        add(s.get("assessed_at"), "effectiveness", f"{s.get('action')}: {s.get('verdict')} (score {s.get('score')})")
    for n in view["notifications"]:
        add(n.get("created_at"), "notification", f"{n.get('event')}: {n.get('title')} [{n.get('status')}]")
    for e in view["audit"]:
        add(e.get("at"), "audit", f"{e.get('event')} by {e.get('actor')}")
    return sorted(events, key=lambda e: str(e["at"]))


@router.get("/console/incidents/{incident_id}")
async def incident_page(request: Request, svc: Services, incident_id: int = FastApiPath(ge=1, le=MAX_ID)) -> Response:
    async def build(v: Visit) -> Response:
        return v.render("incident.html", nav="incidents", **await _incident(v, incident_id))
    return await guarded(request, svc, build)


@router.get("/console/incidents/{incident_id}/live")
async def incident_live(request: Request, svc: Services, incident_id: int = FastApiPath(ge=1, le=MAX_ID)) -> Response:
    async def build(v: Visit) -> Response:
        values = await _incident(v, incident_id)
        return no_change() if unchanged(request, values) else v.render("_incident_live.html", **values)
    return await guarded(request, svc, build)


# --- approvals ---------------------------------------------------------------------------------------------

async def _approval_rows(v: Visit, status: str | None) -> dict[str, Any]:
    await v.require("list", "approvals")
    items = await v.svc.deployments.orchestrator.list_approvals.remote(status, 200)
    items.sort(key=lambda a: (APPROVAL_ORDER.get(a["status"], 1), -a["id"]))
    # Time left changes by itself: the digest moves every half minute so the column stays near the truth.
    return {"approvals": items, "status_filter": status, "digest": digest([items, int(time.time() // 30)])}


@router.get("/console/approvals")
async def approvals_page(request: Request, svc: Services, status: str | None = Query(
        default=None, pattern="^(pending|approved|rejected|expired|used|cancelled)?$")) -> Response:
    async def build(v: Visit) -> Response:
        return v.render("approvals.html", nav="approvals", **await _approval_rows(v, _blank(status)))
    return await guarded(request, svc, build)


@router.get("/console/approvals/rows")
async def approvals_rows(request: Request, svc: Services, status: str | None = Query(
        default=None, pattern="^(pending|approved|rejected|expired|used|cancelled)?$")) -> Response:
    async def build(v: Visit) -> Response:
        values = await _approval_rows(v, _blank(status))
        return no_change() if unchanged(request, values) else v.render("_approval_rows.html", **values)
    return await guarded(request, svc, build)


async def _approval(v: Visit, approval_id: int) -> dict[str, Any]:
    await v.require("list", "approvals")
    approval = await approval_store.get(v.svc.db.pool, approval_id)
    if approval is None:
        raise Refused(404, f"approval {approval_id} not found")
    spec = CATALOG.get(approval.action)
    schema = spec.document()["parameters_schema"] if spec is not None else None
    may_decide = approval.status == "pending" and await v.may(
        "approve", "approvals", approval.target.get("namespace") or None)
    # Without a diff (no cluster connection: the executor recorded only its plan), the calls it would make.
    planned = [] if approval.dry_run_diff else next(
        (a.plan for a in reversed(await workflows.actions_of(v.svc.db.pool, approval.workflow_id))
         if a.action == approval.action and a.plan), [])
    return {"approval": approval, "spec": spec.document() if spec is not None else None, "may_decide": may_decide,
            "fields": overrides.fields(schema, approval.parameters) if may_decide else [], "planned": planned}


@router.get("/console/approvals/{approval_id}")
async def approval_page(request: Request, svc: Services, approval_id: int = FastApiPath(ge=1, le=MAX_ID)) -> Response:
    async def build(v: Visit) -> Response:
        values = await _approval(v, approval_id)
        decided = request.query_params.get("decided", "")
        v.flash = (REHEARSED.get(decided) if values["approval"].rehearsal else None) or DECIDED.get(decided)
        return v.render("approval.html", nav="approvals", **values)
    return await guarded(request, svc, build)


@router.post("/console/approvals/{approval_id}/{verdict}")
async def approval_decide(request: Request, svc: Services, approval_id: int = FastApiPath(ge=1, le=MAX_ID),
                          verdict: str = FastApiPath(pattern="^(approve|reject)$")) -> Response:
    """The form's decision, through the REST route's own path (:func:`kubernaut.gateway.routes.approvals.decide`:
    the grant in the target's namespace, the audit of refusals, the orchestrator's two-person rule and override
    checks). The CSRF token is checked first: without it nothing else is looked at."""
    async def build(v: Visit) -> Response:
        form = {k: str(val) for k, val in (await request.form()).items()}
        if not v.session.csrf_matches(form.get("csrf")):
            raise Refused(403, "refused: the form's CSRF token is missing or wrong (reload the page and try again)")
        approval = await approval_store.get(svc.db.pool, approval_id)
        if approval is None:
            raise Refused(404, f"approval {approval_id} not found")
        spec = CATALOG.get(approval.action)
        schema = spec.document()["parameters_schema"] if spec is not None else None
        try:
            override = overrides.override_from_form(form, schema, approval.parameters) if verdict == "approve" \
                else None
            decision = ApprovalDecision(reason=form.get("reason") or None, override=override)
        except (overrides.BadOverride, ValueError) as exc:
            raise Refused(400, f"refused: {exc}") from None
        try:
            outcome = await decide(svc, request, approval_id, verdict == "approve", decision, v.principal)
        except HTTPException as exc:
            raise Refused(exc.status_code, str(exc.detail), dict(exc.headers or {})) from None
        if outcome.status_code != 200:
            raise Refused(outcome.status_code, f"refused: {_error_text(outcome)}")
        decided = json.loads(bytes(outcome.body)).get("approval") or {}
        target = f"{v.base}/console/approvals/{approval_id}?{urlencode({'decided': decided.get('status', '')})}"
        return secure_headers(RedirectResponse(target, status_code=303))
    return await guarded(request, svc, build)


def _error_text(response: Response) -> str:
    try:
        body = json.loads(bytes(response.body))
    except ValueError:
        return "the decision was refused"
    if isinstance(body, dict):
        if body.get("problems"):
            return "; ".join(f"{p.get('field')}: {p.get('message')}" for p in body["problems"])
        return str(body.get("error") or body.get("detail") or body)
    return str(body)


# --- catalog, learning, system -----------------------------------------------------------------------------

@router.get("/console/actions")
async def actions_page(request: Request, svc: Services) -> Response:
    async def build(v: Visit) -> Response:
        await v.require("list", "actions")
        actions = await svc.deployments.executor.catalog.remote()
        rbac = {name: [rule._asdict() for rule in spec.rbac] for name, spec in CATALOG.items()}
        return v.render("actions.html", nav="actions", actions=actions, rbac=rbac)
    return await guarded(request, svc, build)


@router.get("/console/learning")
async def learning_page(request: Request, svc: Services) -> Response:
    async def build(v: Visit) -> Response:
        await v.require("list", "patterns")
        await v.require("get", "effectiveness")
        patterns = await svc.deployments.intelligence.patterns.remote()
        effectiveness = await svc.deployments.effectiveness.summary.remote()
        orchestration = svc.config.orchestration
        return v.render("learning.html", nav="learning", patterns=patterns, effectiveness=effectiveness,
                        min_cases=orchestration.autonomy_min_cases,
                        min_lower_bound=orchestration.autonomy_min_lower_bound)
    return await guarded(request, svc, build)


@router.get("/console/system")
async def system_page(request: Request, svc: Services) -> Response:
    async def build(v: Visit) -> Response:
        await v.require("get", "info")
        return v.render("system.html", nav="system", **await system_status(svc))
    return await guarded(request, svc, build)
