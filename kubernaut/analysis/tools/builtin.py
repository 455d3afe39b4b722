"""The investigation's tools: what an SRE reads before deciding, read-only, bounded and redacted.

Kubernetes is read through ``ClusterAPI`` only, in the incident's own namespace (Nodes too, being where its
pods run); Secrets are never read, not even listed by name from here. Every text from the cluster goes through
the configured redactor. Prometheus is queried only at the configured URL with a bounded range and step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from kubernaut.analysis.facts import Situation
from kubernaut.analysis.prompt import incident_data
from kubernaut.analysis.tools.registry import Tool, ToolFailed, ToolRefused, ToolRegistry
from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import ClusterError, NotFound
from kubernaut.cluster.redaction import Redactor, redactor
from kubernaut.config.settings import KubernautConfig
from kubernaut.context.summarize import clip, revision_of_replicaset, template_fields

# What get_resource may read: the kinds the Context API reads, less Secrets (never) and Events (list_events).
READABLE_KINDS = ("Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Service",
                  "ConfigMap", "PersistentVolumeClaim", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                  "NetworkPolicy", "ResourceQuota", "Node")
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
_DROPPED_METADATA = ("managedFields", "uid", "selfLink", "generateName")
_MAX_SERIES = 10
_MAX_POINTS = 30


@dataclass
class ToolScope:
    """What one incident's tools may see."""

    situation: Situation
    cluster: ClusterAPI | None
    redactor: Redactor
    prometheus_url: str | None = None
    prometheus_token: str | None = None
    request_timeout_s: float = 5.0
    history: list[str] = field(default_factory=list)

    @property
    def namespace(self) -> str | None:
        return self.situation.incident_target.namespace

    def api(self) -> ClusterAPI:
        if self.cluster is None:
            raise ToolFailed("the cluster is not reachable from the analysis")
        return self.cluster

    def in_scope(self, kind: str, namespace: str | None) -> str | None:
        """The namespace to read in; refused outside the incident's namespace."""
        if kind == "Node":
            return None
        if namespace not in (None, "", self.namespace):
            raise ToolRefused(f"{kind} in namespace {clip(namespace, 63)!r} is outside this incident's namespace "
                              f"{self.namespace!r}")
        if self.namespace is None:
            raise ToolRefused(f"this incident has no namespace: {kind} objects cannot be read")
        return self.namespace


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GetResource(_Args):
    kind: str = Field(description=f"one of {', '.join(READABLE_KINDS)}", max_length=40)
    name: str = Field(max_length=253)
    namespace: str | None = Field(default=None, max_length=63, description="default: the incident's namespace")


class ListEvents(_Args):
    object_name: str | None = Field(default=None, max_length=253, description="only events about this object")
    limit: int = Field(default=15, ge=1, le=40)


class TailLogs(_Args):
    pod: str = Field(max_length=253)
    container: str | None = Field(default=None, max_length=63)
    lines: int = Field(default=50, ge=1, le=200)
    previous: bool = Field(default=False, description="the previous (crashed) container's log")


class RolloutHistory(_Args):
    kind: Literal["Deployment"] = "Deployment"
    name: str = Field(max_length=253)


class RecentChanges(_Args):
    minutes: int = Field(default=120, ge=1, le=1440)


class PromQuery(_Args):
    query: str = Field(max_length=500, description="PromQL")
    minutes: int = Field(default=60, ge=1, le=360)
    step_s: int = Field(default=60, ge=15, le=3600)


class NoArgs(_Args):
    pass


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    for key in _DROPPED_METADATA:
        meta.pop(key, None)
    (meta.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return obj


async def get_resource(args: GetResource, scope: ToolScope) -> Any:
    if args.kind.lower() in ("secret", "secrets"):
        raise ToolRefused("Secrets are never read by the investigation")
    if args.kind not in READABLE_KINDS:
        raise ToolFailed(f"kind {clip(args.kind, 40)!r} cannot be read; readable: {', '.join(READABLE_KINDS)}")
    namespace = scope.in_scope(args.kind, args.namespace)
    try:
        obj = await scope.api().get_or_none(args.kind, args.name, namespace, timeout_s=scope.request_timeout_s)
    except ClusterError as exc:
        raise ToolFailed(f"{args.kind}/{args.name}: {clip(exc, 200)}") from None
    if obj is None:
        raise ToolFailed(f"{args.kind}/{args.name} not found")
    return scope.redactor.obj(_strip(obj))


async def list_events(args: ListEvents, scope: ToolScope) -> Any:
    namespace = scope.in_scope("Event", None)
    selector = f"involvedObject.name={args.object_name}" if args.object_name else None
    try:
        items = await scope.api().list("Event", namespace, field_selector=selector, limit=200,
                                       timeout_s=scope.request_timeout_s)
    except ClusterError as exc:
        raise ToolFailed(f"events: {clip(exc, 200)}") from None

    def when(e: dict[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp")
                   or "")

    items.sort(key=when, reverse=True)
    return [{"type": e.get("type"), "reason": e.get("reason"), "count": e.get("count"), "last": when(e),
             "object": f"{(e.get('involvedObject') or {}).get('kind')}/{(e.get('involvedObject') or {}).get('name')}",
             "message": scope.redactor.text(clip(e.get("message"), 300))} for e in items[:args.limit]]


async def tail_logs(args: TailLogs, scope: ToolScope) -> Any:
    namespace = scope.in_scope("Pod", None)
    api = scope.api()
    container = args.container
    try:
        if container is None:
            pod = await api.get("Pod", args.pod, namespace, timeout_s=scope.request_timeout_s)
            names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
            if not names:
                raise ToolFailed(f"pod {args.pod} has no containers")
            container = names[0]
        text = await api.pod_log(args.pod, namespace or "", container, args.lines, previous=args.previous,
                                 timeout_s=scope.request_timeout_s)
    except NotFound:
        raise ToolFailed(f"pod {args.pod} (container {container}) not found or has no log") from None
    except ClusterError as exc:
        raise ToolFailed(f"log of {args.pod}: {clip(exc, 200)}") from None
    lines = str(text).splitlines()[-args.lines:]
    return {"pod": args.pod, "container": container, "previous": args.previous,
            "lines": [scope.redactor.text(clip(line, 400)) for line in lines]}


async def rollout_history(args: RolloutHistory, scope: ToolScope) -> Any:
    namespace = scope.in_scope(args.kind, None)
    api = scope.api()
    try:
        sets = await api.list("ReplicaSet", namespace, limit=200, timeout_s=scope.request_timeout_s)
    except ClusterError as exc:
        raise ToolFailed(f"rollout history: {clip(exc, 200)}") from None
    owned = [rs for rs in sets if any(o.get("kind") == args.kind and o.get("name") == args.name
                                      for o in (rs.get("metadata") or {}).get("ownerReferences") or [])]
    revisions = sorted((revision_of_replicaset(rs) for rs in owned), key=lambda r: r.revision or 0, reverse=True)
    if not revisions:
        raise ToolFailed(f"no revisions of {args.kind}/{args.name}")
    out: dict[str, Any] = {"revisions": [{"revision": r.revision, "name": r.name, "images": r.images,
                                          "replicas": r.replicas, "created_at": r.created_at}
                                         for r in revisions[:5]]}
    if len(revisions) >= 2:
        newest, previous = revisions[0], revisions[1]
        by_name = {(rs.get("metadata") or {}).get("name"): rs for rs in owned}
        new_fields = _fields(by_name.get(newest.name), scope)
        old_fields = _fields(by_name.get(previous.name), scope)
        out["diff_last_two"] = {key: {"before": old_fields.get(key), "after": new_fields.get(key)}
                                for key in sorted(set(new_fields) | set(old_fields))
                                if new_fields.get(key) != old_fields.get(key)}
    return out


def _fields(rs: dict[str, Any] | None, scope: ToolScope) -> dict[str, Any]:
    """The rollout-relevant template fields of a ReplicaSet, redacted, as comparable JSON."""
    if rs is None:
        return {}
    spec = scope.redactor.obj(((rs.get("spec") or {}).get("template") or {}).get("spec") or {})
    digests = template_fields(spec)
    containers = spec.get("containers") or []
    return {
        "images": [c.get("image") for c in containers],
        "env": [[clip(f"{e.get('name')}={e.get('value', '<ref>')}", 120) for e in c.get("env") or []][:20]
                for c in containers],
        "args": [[clip(a, 120) for a in (c.get("args") or [])][:20] for c in containers],
        "resources": [c.get("resources") for c in containers],
        **{f"digest.{k}": v for k, v in digests.items() if k not in ("image", "env", "resources")},
    }


async def recent_changes(args: RecentChanges, scope: ToolScope) -> Any:
    namespace = scope.in_scope("ConfigMap", None)
    api = scope.api()
    since = datetime.now(timezone.utc) - timedelta(minutes=args.minutes)
    out: dict[str, Any] = {"since": since.isoformat(timespec="seconds"),
                           "note": "Secrets are not listed (never read by the investigation)"}
    for kind in ("ConfigMap", "NetworkPolicy", "ResourceQuota", "Deployment"):
        try:
            items = await api.list(kind, namespace, limit=200, timeout_s=scope.request_timeout_s)
        except ClusterError as exc:
            out[kind] = f"unavailable: {clip(exc, 120)}"
            continue
        changed = []
        for item in items:
            meta = item.get("metadata") or {}
            stamps = [meta.get("creationTimestamp")] + [m.get("time") for m in meta.get("managedFields") or []]
            latest = max((s for s in stamps if s), default=None)
            if latest and datetime.fromisoformat(str(latest).replace("Z", "+00:00")) >= since:
                changed.append({"name": meta.get("name"), "changed_at": latest,
                                "created_at": meta.get("creationTimestamp")})
        out[kind] = sorted(changed, key=lambda c: c["changed_at"], reverse=True)[:15]
    return out


async def query_prometheus(args: PromQuery, scope: ToolScope) -> Any:
    if not scope.prometheus_url:
        raise ToolFailed("no Prometheus is configured (effectiveness.prometheus_url)")
    end = time.time()
    params = {"query": args.query, "start": end - args.minutes * 60, "end": end, "step": args.step_s}
    headers = {"Authorization": f"Bearer {scope.prometheus_token}"} if scope.prometheus_token else {}
    try:
        async with httpx.AsyncClient(timeout=scope.request_timeout_s, headers=headers) as client:
            response = await client.get(f"{scope.prometheus_url.rstrip('/')}/api/v1/query_range", params=params)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ToolFailed(f"Prometheus: {type(exc).__name__}") from None
    if body.get("status") != "success":
        raise ToolFailed(f"Prometheus: {clip(body.get('error') or response.status_code, 200)}")
    series = (body.get("data") or {}).get("result") or []
    return {"series": len(series), "result": [
        {"metric": {k: clip(v, 80) for k, v in (s.get("metric") or {}).items()},
         "values": [[round(float(t)), v] for t, v in (s.get("values") or [])[-_MAX_POINTS:]]}
        for s in series[:_MAX_SERIES]]}


async def similar_incidents(args: NoArgs, scope: ToolScope) -> Any:
    ctx = scope.situation.context
    return {
        "outcomes": [clip(line, 240) for line in scope.situation.history[:10]],
        "this_target": [record.model_dump(mode="json", exclude_none=True) for record in ctx.history[:5]],
        "same_alerts_elsewhere": [record.model_dump(mode="json", exclude_none=True) for record in ctx.similar[:5]],
        "past_actions": [record.model_dump(mode="json", exclude_none=True) for record in ctx.actions[:5]],
    }


async def context_summary(args: NoArgs, scope: ToolScope) -> Any:
    return incident_data(scope.situation)


TOOLS = (
    Tool("get_resource", "Read one Kubernetes object of this incident's namespace (or a Node), redacted. "
         "Secrets are never readable.", GetResource, get_resource),
    Tool("list_events", "Recent events in the incident's namespace, newest first, optionally about one object.",
         ListEvents, list_events),
    Tool("tail_logs", "The last lines of a pod's container log (redacted); previous=true for the crashed one.",
         TailLogs, tail_logs),
    Tool("rollout_history", "A Deployment's revisions and the field-by-field diff of the last two.", RolloutHistory,
         rollout_history),
    Tool("recent_changes", "ConfigMaps, NetworkPolicies, ResourceQuotas and Deployments of the namespace changed "
         "in the last minutes.", RecentChanges, recent_changes),
    Tool("query_prometheus", "A bounded PromQL range query against the configured Prometheus.", PromQuery,
         query_prometheus),
    Tool("similar_incidents", "Past incidents like this one and the measured outcomes of their actions.", NoArgs,
         similar_incidents),
    Tool("context_summary", "The gathered context of this incident (alerts, findings, workload, pods, events).",
         NoArgs, context_summary),
)


def default_registry() -> ToolRegistry:
    return ToolRegistry(TOOLS)


def scope_factory(config: KubernautConfig, api: ClusterAPI | None, *,
                  cluster_api: Callable[[str | None], ClusterAPI | None] | None = None
                  ) -> Callable[[Situation], ToolScope]:
    """What the tools may see for each incident, from the configuration and the analysis' cluster access.
    ``cluster_api`` (a fleet): the client of the incident's own cluster (``Situation.cluster``), None for one
    that is not configured or has no credentials; ``api`` is then not used."""
    redact = redactor(config.redaction)
    token = config.effectiveness.prometheus_token
    timeout = min(config.kubernetes.request_timeout_s, config.analysis.llm_tool_call_timeout_s)

    def scope(situation: Situation) -> ToolScope:
        reader = cluster_api(situation.cluster) if cluster_api is not None else api
        return ToolScope(situation=situation, cluster=reader, redactor=redact,
                         prometheus_url=config.effectiveness.prometheus_url,
                         prometheus_token=token.get_secret_value() if token else None, request_timeout_s=timeout)

    return scope
