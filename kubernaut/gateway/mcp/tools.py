"""The MCP server's tools and resources: the REST API's reads, its dry analysis and (when configured) its
approval decision, for assistants and agents.

Every tool runs as the principal the endpoint authenticated (:mod:`kubernaut.gateway.mcp.endpoint`) and checks the
same permission as the REST route it mirrors; a refusal, an unknown id or a bad argument is a tool error the agent
reads (``isError``), never a protocol failure. ``decide_approval`` calls the REST approval route's own function,
so the namespace grant, the audit of refusals, the orchestrator's checks (self-approval, two-person rule) and the
policy re-run on overrides are the same.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import HTTPException
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError
from starlette.requests import Request

from kubernaut import __version__
from kubernaut.cluster.redaction import redactor
from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway import services as gateway_services
from kubernaut.gateway.clusters import unknown_alert_cluster, unknown_cluster
from kubernaut.gateway.errors import describe_validation_error, summary
from kubernaut.gateway.ingest import sender_of
from kubernaut.gateway.mcp import models
from kubernaut.gateway.routes import approvals as approval_routes
from kubernaut.gateway.routes.limits import MAX_ID
from kubernaut.gateway.services import GatewayServices
from kubernaut.identity.chain import Denied
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.principal import Permission, Principal
from kubernaut.models.resource import ResourceRef
from kubernaut.storage import views


@dataclass(frozen=True)
class Caller:
    """Who calls, set by the endpoint for the duration of one HTTP request (the SDK's own bearer auth hands its
    user to handlers the same way, through a context variable)."""

    principal: Principal
    request: Request


CALLER: ContextVar[Caller | None] = ContextVar("kubernaut_mcp_caller", default=None)

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Namespace = Annotated[str, Field(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
ClusterName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$")]
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def caller(error: type[Exception] = ToolError) -> Caller:
    found = CALLER.get()
    if found is None:  # fail closed: only the authenticating endpoint sets it
        raise error("unauthenticated")
    return found


async def authorized(permission: Permission, error: type[Exception] = ToolError
                     ) -> tuple[GatewayServices, Principal]:
    """This replica's services and the caller, if it holds ``permission``; else ``error`` naming it (a tool
    error for tools, a resource error for resources: both reach the agent as a refusal, not a crash)."""
    who = caller(error)
    svc = gateway_services.services()
    try:
        await svc.auth.authorize(who.principal, permission)
    except Denied as exc:
        raise error(exc.message) from None
    return svc, who.principal


def _target(value: Any) -> models.Target:
    if isinstance(value, dict):
        return models.Target(kind=value.get("kind"), name=value.get("name"), namespace=value.get("namespace"))
    return models.Target()


class Untrusted:
    """Redacts and clips text from outside Kubernaut before an agent sees it."""

    def __init__(self, config: KubernautConfig) -> None:
        self._redactor = redactor(config.redaction)
        self._max = config.mcp.max_text_chars

    def text(self, origin: str, value: Any) -> models.UntrustedText | None:
        if value is None or value == "":
            return None
        text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
        text = self._redactor.text(text)
        if len(text) > self._max:
            text = text[: self._max] + f"… [{len(text) - self._max} more characters]"
        return models.UntrustedText(origin=origin, text=text)

    def data(self, origin: str, value: dict[str, Any]) -> models.UntrustedData:
        return models.UntrustedData(origin=origin, data=self._redactor.obj(value))

    def finding(self, item: dict[str, Any]) -> models.Finding:
        evidence = [self.text(f"evidence ({item.get('source', 'cluster')})", e) for e in item.get("evidence") or []]
        return models.Finding(kind=str(item.get("kind")), summary=str(item.get("summary", "")),
                              cause=_target(item["cause"]) if item.get("cause") else None,
                              evidence=[e for e in evidence if e is not None], source=str(item.get("source", "")))


def incident_summary(row: dict[str, Any]) -> models.IncidentSummary:
    analysis = row.get("analysis") or {}
    return models.IncidentSummary(
        id=row["id"], status=row["status"], phase=row.get("phase"), severity=row.get("severity"),
        priority=row.get("priority"), environment=row.get("environment"), target=_target(row.get("target")),
        signals=list(row.get("signals") or []), occurrence_count=row.get("occurrence_count"),
        first_seen=row.get("first_seen"), last_seen=row.get("last_seen"), action=analysis.get("action"),
        engine=analysis.get("engine"), confidence=analysis.get("confidence"))


def timeline(view: dict[str, Any], untrusted: Untrusted) -> list[models.TimelineEvent]:
    """Everything that happened to an incident, one event per record, oldest first."""
    events: list[models.TimelineEvent] = []
    for alert in view["alerts"]:
        annotations = alert.get("annotations") or {}
        text = annotations.get("summary") or annotations.get("description") or annotations.get("message")
        events.append(models.TimelineEvent(
            at=alert["received_at"], source="alert",
            summary=f"alert {alert['alertname']} {alert['status']} (severity {alert.get('severity') or '-'})",
            text=untrusted.text("alert annotation", text)))
    for analysis in view["analyses"]:
        events.append(models.TimelineEvent(
            at=analysis["created_at"], source="analysis",
            summary=(f"analysis by {analysis['engine']}: {analysis['action']} on "
                     f"{_describe(analysis.get('target'))}, confidence {analysis['confidence']:.2f}"),
            text=untrusted.text("root cause (analysis)", analysis.get("root_cause"))))
    for workflow in view["workflows"]:
        for step in workflow["steps"]:
            events.append(models.TimelineEvent(
                at=step["started_at"], source="step",
                summary=f"workflow {workflow['id']} step {step['name']}: {step['status']}",
                text=untrusted.text("step detail", step.get("detail") or None)))
    for action in view["actions"]:
        mode = "dry-run" if action["dry_run"] else "live"
        events.append(models.TimelineEvent(
            at=action["created_at"], source="action",
            summary=f"action {action['action']} ({mode}) on {_describe(action.get('target'))}: {action['status']}",
            text=untrusted.text("action diff/error", action.get("diff") or action.get("error"))))
    for note in view["notifications"]:
        events.append(models.TimelineEvent(at=note["created_at"], source="notification",
                                           summary=f"notification {note['event']}: {note['status']}"))
    for assessment in view["assessments"]:
        events.append(models.TimelineEvent(
            at=assessment["assessed_at"], source="assessment",
            summary=(f"assessment of {assessment['action']}: {assessment.get('verdict') or assessment['status']}"
                     + (f", score {assessment['score']:.2f}" if assessment.get("score") is not None else ""))))
    for event in view["audit"]:
        events.append(models.TimelineEvent(at=event["at"], source="audit",
                                           summary=f"{event['actor']}: {event['event']}"))
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    events.sort(key=lambda e: e.at or epoch)
    return events


def _describe(target: Any) -> str:
    t = _target(target)
    return "/".join(p for p in (t.namespace, t.kind, t.name) if p) or "-"


def approval_model(item: dict[str, Any], untrusted: Untrusted) -> models.Approval:
    return models.Approval(
        id=item["id"], incident_id=item["incident_id"], status=item["status"], action=item["action"],
        target=_target(item.get("target")), parameters=item.get("parameters") or {}, reason=item.get("reason", ""),
        requested_at=item["requested_at"], expires_at=item["expires_at"],
        dry_run_diff=untrusted.text("dry-run diff of cluster objects", item.get("dry_run_diff")),
        decided_by=item.get("decided_by"), decided_at=item.get("decided_at"),
        decision_reason=untrusted.text("the decider's reason", item.get("decision_reason")),
        approvals_required=item.get("approvals_required") or 1, rehearsal=bool(item.get("rehearsal")))


def analysis_model(result: dict[str, Any], untrusted: Untrusted) -> models.Analysis:
    origin = "LLM output" if str(result.get("engine", "")).startswith("llm") else "analysis text"
    return models.Analysis(
        target=_target(result.get("target")), action=result["action"], parameters=result.get("parameters") or {},
        confidence=result["confidence"], engine=result["engine"], rule_id=result.get("rule_id"),
        justified_by=result.get("justified_by"),
        root_cause=untrusted.text(origin, result.get("root_cause")) or models.UntrustedText(origin=origin, text=""),
        reasoning=[r for r in (untrusted.text(origin, line) for line in result.get("reasoning") or []) if r],
        findings=[untrusted.finding(f) for f in result.get("findings") or []], flags=list(result.get("flags") or []))


async def incident_view(svc: GatewayServices, incident_id: int, limit: int) -> dict[str, Any]:
    view = await views.incident_detail(svc.db.pool, incident_id, limit=limit)
    if view is None:
        raise ToolError(f"incident {incident_id} not found")
    return view


def policy_document(config: KubernautConfig) -> str:
    """The policy the orchestrator evaluates: its configured file, else the packaged one (same rule as
    kubernaut.orchestration.policy.load_policy)."""
    path = config.orchestration.policy_file
    if path is not None:
        return path.read_text(encoding="utf-8")
    return resources.files("kubernaut.orchestration").joinpath("policy.yaml").read_text(encoding="utf-8")


def build_server(config: KubernautConfig) -> MCPServer:
    """The MCP server of one gateway replica; ``decide_approval`` only with ``mcp.allow_decisions``."""
    untrusted = Untrusted(config)
    max_items = config.mcp.max_items
    server: MCPServer = MCPServer(
        # The SDK calls logging.basicConfig with this level: WARNING changes nothing where the root logger has no
        # handler yet (Python prints WARNING and above then anyway); kubernaut.* logs do not propagate there.
        name="kubernaut", version=__version__, log_level="WARNING",
        instructions=("Kubernaut remediates Kubernetes alerts safely. Read incidents, their timelines, resource "
                      "context, the action catalog and what history says; analyze an alert without acting. "
                      + models.UNTRUSTED_NOTICE))

    @server.tool(annotations=READ_ONLY)
    async def list_incidents(status: Literal["open", "resolved", "closed"] | None = None,
                             namespace: Namespace | None = None,
                             limit: Annotated[int, Field(ge=1, le=1000)] = 20,
                             offset: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0) -> models.IncidentList:
        """Incidents, newest first, optionally by status and namespace."""
        svc, _ = await authorized(Permission(verb="list", resource="incidents"))
        limit = min(limit, max_items)
        rows = await views.list_incidents(svc.db.pool, status=status, namespace=namespace, limit=limit,
                                          offset=offset)
        return models.IncidentList(items=[incident_summary(r) for r in rows], limit=limit, offset=offset)

    @server.tool(annotations=READ_ONLY)
    async def get_incident(incident_id: Id) -> models.IncidentTimeline:
        """One incident as a timeline: alerts, analysis, workflow steps, actions, notifications, assessments,
        audit events."""
        svc, _ = await authorized(Permission(verb="get", resource="incidents"))
        view = await incident_view(svc, incident_id, max_items)
        page = view["page"]
        truncated = max(page["alerts_total"], page["steps_total"], page["audit_total"]) > max_items
        analysis = view.get("analysis") or {}
        return models.IncidentTimeline(
            incident=incident_summary({**view, "analysis": analysis}),
            root_cause=untrusted.text("root cause (analysis)", analysis.get("root_cause")),
            events=timeline(view, untrusted), truncated=truncated)

    @server.tool(annotations=READ_ONLY)
    async def get_context(kind: Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$")],
                          name: Annotated[str, Field(min_length=1, max_length=253,
                                                     pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")],
                          namespace: Namespace | None = None, cluster: ClusterName | None = None
                          ) -> models.ResourceContext:
        """Live state of a Kubernetes resource (workload, pods, events, nodes, ...) and its incident history;
        ``cluster``: which cluster of the fleet (default: the home cluster)."""
        svc, _ = await authorized(Permission(verb="get", resource="contexts"))
        if (reason := unknown_cluster(svc.config, cluster)) is not None:
            raise ToolError(f"cluster: {reason}")
        body = await svc.deployments.context.get_context.remote(
            ResourceRef(kind=kind, name=name, namespace=namespace), cluster=cluster)
        history = body.pop("history", [])
        actions = body.pop("actions", [])
        return models.ResourceContext(
            target=_target(body.get("target")), found=bool(body.get("found")),
            cluster_available=bool(body.get("cluster_available")),
            live_state=untrusted.data("the cluster's objects, events and logs", body),
            history=history[:max_items], actions=actions[:max_items], missing=list(body.get("missing") or []))

    @server.tool(annotations=READ_ONLY)
    async def analyze_alert(alerts: Annotated[list[models.AlertInput], Field(min_length=1, max_length=1000)]
                            ) -> models.AnalyzeResult:
        """Analyze alerts without acting (as POST /api/v1/analyze): what Kubernaut would decide and why. Nothing
        is stored or done."""
        svc, principal = await authorized(Permission(verb="create", resource="analyses"))
        gateway_cfg = svc.config.gateway
        bound = min(gateway_cfg.analyze_max_alerts, gateway_cfg.max_alerts_per_request)
        if len(alerts) > bound:
            raise ToolError(f"alerts: at most {bound} alerts per analysis")
        wait = svc.analyze_limiter.acquire(sender_of(caller().request, principal, gateway_cfg))
        if wait > 0:
            raise ToolError(f"rate limit exceeded for this sender; retry in {wait:.0f} s")
        now = datetime.now(timezone.utc)
        body = {"version": "4", "status": "firing", "receiver": "mcp", "alerts": [
            {"labels": a.labels, "annotations": a.annotations, "status": a.status,
             "startsAt": (a.starts_at or now).isoformat()} for a in alerts]}
        try:
            payload = WebhookPayload.model_validate(body, context={"received_at": now})
        except ValidationError as exc:  # the webhook's own checks (names, label grammar, times)
            raise ToolError(f"invalid alert: {summary(describe_validation_error(exc))}") from None
        if (unknown := unknown_alert_cluster(svc.config, payload.alerts)) is not None:
            raise ToolError(": ".join(unknown))
        results = await svc.deployments.analysis.analyze_payload.remote(
            payload.model_dump(mode="json", by_alias=True, exclude_none=True))
        return models.AnalyzeResult(analyses=[analysis_model(r, untrusted) for r in results])

    @server.tool(annotations=READ_ONLY)
    async def list_actions() -> models.ActionCatalog:
        """The action catalog: every action Kubernaut may take, its risk, inverse and parameter JSON schema."""
        svc, _ = await authorized(Permission(verb="list", resource="actions"))
        catalog = await svc.deployments.executor.catalog.remote()
        return models.ActionCatalog(actions=[models.CatalogAction.model_validate(a)
                                             for a in catalog])

    @server.tool(annotations=READ_ONLY)
    async def similar_incidents(incident_id: Id, limit: Annotated[int, Field(ge=1, le=50)] = 5
                                ) -> models.SimilarIncidents:
        """Past incidents like this one and how they ended (what was done, effective or not), past outcomes on
        the same workload, and what the learning concludes."""
        svc, _ = await authorized(Permission(verb="list", resource="patterns"))
        found = await svc.deployments.intelligence.context_for.remote(incident_id, limit)
        if found is None:
            raise ToolError(f"incident {incident_id} not found")
        return models.SimilarIncidents(
            incident_id=incident_id, signature=found.get("signature"), similar=found.get("similar") or [],
            what_worked=found.get("what_worked") or [], target_history=found.get("target_history") or [],
            summary=found.get("summary") or [])

    @server.tool(annotations=READ_ONLY)
    async def list_approvals(status: Literal["pending", "approved", "rejected", "expired", "used",
                                             "cancelled"] | None = None,
                             limit: Annotated[int, Field(ge=1, le=1000)] = 20) -> models.ApprovalList:
        """Approval requests (pending first by default): the action, target, policy reason, dry-run diff."""
        svc, _ = await authorized(Permission(verb="list", resource="approvals"))
        items = await svc.deployments.orchestrator.list_approvals.remote(status, min(limit, max_items))
        return models.ApprovalList(items=[approval_model(i, untrusted) for i in items])

    @server.tool(annotations=READ_ONLY)
    async def explain_decision(incident_id: Id) -> models.DecisionExplanation:
        """Why Kubernaut chose its action for an incident: the rule, the evidence (findings), the policy's
        decision and what learning said."""
        svc, principal = await authorized(Permission(verb="get", resource="incidents"))
        view = await incident_view(svc, incident_id, 1)
        analysis = view.get("analysis")
        learning: list[str] = []
        if analysis is not None and await _may(svc, principal, Permission(verb="list", resource="patterns")):
            found = await svc.deployments.intelligence.context_for.remote(incident_id, 5)
            learning = list((found or {}).get("summary") or [])
        if analysis is None:
            return models.DecisionExplanation(incident_id=incident_id, learning=learning)
        workflow = view.get("workflow") or {}
        explained = analysis_model(analysis, untrusted)
        return models.DecisionExplanation(
            incident_id=incident_id, action=explained.action, engine=explained.engine, rule_id=explained.rule_id,
            justified_by=explained.justified_by, confidence=explained.confidence, root_cause=explained.root_cause,
            findings=explained.findings, reasoning=explained.reasoning,
            alternatives=list(analysis.get("alternatives") or []),
            policy=(workflow.get("decision") or None), learning=learning)

    if config.mcp.allow_decisions:
        @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False,
                                                 open_world_hint=False))
        async def decide_approval(approval_id: Id, decision: Literal["approve", "reject"],
                                  reason: Annotated[str, Field(min_length=1, max_length=2000)],
                                  override: dict[str, Any] | None = None) -> models.Decision:
            """Approve or reject a pending approval as the calling principal (approve permission in the
            target's namespace). An override changes parameters and is validated and re-checked by the policy."""
            who = caller()
            svc = gateway_services.services()
            body = approval_routes.ApprovalDecision(reason=reason, override=override)
            try:
                answer = await approval_routes.decide(svc, who.request, approval_id, decision == "approve", body,
                                                       who.principal)
            except HTTPException as exc:
                raise ToolError(str(exc.detail)) from None
            outcome = json.loads(bytes(answer.body))
            if answer.status_code != 200:
                raise ToolError(str(outcome.get("error") or outcome))
            return models.Decision(approval=approval_model(outcome["approval"], untrusted),
                                   decided_as=who.principal.actor)

    @server.resource("kubernaut://catalog", name="catalog", mime_type="application/json",
                     description="The action catalog (read-only)")
    async def catalog_resource() -> str:
        svc, _ = await authorized(Permission(verb="list", resource="actions"), ResourceError)
        return json.dumps({"actions": await svc.deployments.executor.catalog.remote()}, indent=2, default=str)

    @server.resource("kubernaut://policy", name="policy", mime_type="application/yaml",
                     description="The orchestration policy the workflows are decided by (read-only)")
    async def policy_resource() -> str:
        # The policy is part of the configuration a viewer reads in /api/v1/info.
        svc, _ = await authorized(Permission(verb="get", resource="info"), ResourceError)
        return policy_document(svc.config)

    return server


async def _may(svc: GatewayServices, principal: Principal, permission: Permission) -> bool:
    try:
        await svc.auth.authorize(principal, permission)
    except Denied:
        return False
    return True
