"""Gather the live context of a target from the Kubernetes API within a time budget.

Two phases: first the owner chain (each step needs the previous answer), then everything about the
workload in parallel (pods, revisions, events, HPA, PDB, PVC, NetworkPolicy, nodes, quotas). What
does not arrive before the deadline is listed in ``missing`` rather than waited for: an analysis
with partial context now beats a complete one after the alert storm has moved on.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernaut.cluster import scope as scope_rule
from kubernaut.cluster.redaction import Redactor, redactor
from kubernaut.context import selectors, summarize
from kubernaut.context.cluster_reader import KubeError, KubeReader
from kubernaut.context.models import (
    NodeSummary,
    OwnerLink,
    PodSummary,
    PolicyBlock,
    PvcSummary,
    ResourceContext,
    RevisionSummary,
    ScopeSummary,
    ServiceSummary,
)
from kubernaut.context.traits import detect
from kubernaut.gitops import detect as gitops_detect
from kubernaut.gitops.models import GitOpsInfo
from kubernaut.models.resource import ResourceRef

logger = logging.getLogger(__name__)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
_MAX_PODS = 20
_MAX_NODES = 5
_MAX_PVCS = 10
_MIN_CALL_TIMEOUT_S = 0.2
_MAX_CANDIDATE_NODES = 100
_MAX_CONFIG_OBJECTS = 10
_MAX_SERVICES = 3
# "<service>.<namespace>" (optionally ".svc[.cluster.local]") in error text: where a dependency may be.
_SVC_DNS = re.compile(r"([a-z0-9][a-z0-9.-]{0,250}[a-z0-9])\.svc(?:\.cluster\.local)?\b")
_SERVICE_HOST = re.compile(
    r"(?<![\w.-])([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\.([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.svc(\.cluster\.local)?)?"
    r"(?=[:/\s\"'),]|$)")


@dataclass
class _Deadline:
    at: float

    def left(self) -> float:
        return self.at - time.monotonic()

    def call_timeout(self) -> float:
        return max(_MIN_CALL_TIMEOUT_S, self.left())


@dataclass
class _Resolved:
    """Phase 1: the target object, its owner chain, and the workload at the top of it."""

    chain: list[OwnerLink] = field(default_factory=list)
    workload_kind: str | None = None
    workload: dict[str, Any] | None = None
    target_obj: dict[str, Any] | None = None
    node: dict[str, Any] | None = None


class ContextGatherer:
    def __init__(self, reader: KubeReader | None, unavailable_reason: str | None = None, *,
                 time_budget_s: float = 3.0, event_limit: int = 20, managed_label: str | None = None,
                 managed_namespaces: list[str] | None = None, redact: Redactor | None = None,
                 gitops_detect_owners: bool = True, argocd_instance_label: str = gitops_detect.DEFAULT_INSTANCE_LABEL,
                 argocd_namespaces: list[str] | None = None, gitops_repositories: list[str] | None = None) -> None:
        self._reader = reader
        self._unavailable = unavailable_reason or "no Kubernetes credentials"
        self._budget = time_budget_s
        self._event_limit = event_limit
        # The executor's scope rule, so the analysis never proposes what the executor would refuse.
        self._managed_label = managed_label
        self._managed_namespaces = list(managed_namespaces or [])
        # Log tails and event messages go into findings, prompts and stored analyses: secrets out first.
        self._redact = redact or redactor()
        # Who owns the desired state (issue 15): Argo CD / Flux owners are read when the markers say so.
        self._gitops_owners = gitops_detect_owners
        self._argo_label = argocd_instance_label
        self._argo_namespaces = list(argocd_namespaces or ["argocd"])
        self._gitops_repositories = {gitops_detect.normalise_url(u) for u in gitops_repositories or []}

    @property
    def available(self) -> bool:
        return self._reader is not None

    async def gather(self, target: ResourceRef, budget_s: float | None = None) -> ResourceContext:
        started = time.monotonic()
        ctx = ResourceContext(target=target)
        if self._reader is None:
            ctx.reason = self._unavailable
            ctx.missing.append(f"live state: {self._unavailable}")
            return ctx
        deadline = _Deadline(started + (budget_s or self._budget))
        try:
            resolved = await asyncio.wait_for(asyncio.to_thread(self._resolve, target, deadline),
                                              timeout=max(deadline.left(), 0.01))
        except asyncio.TimeoutError:
            ctx.missing.append("owner chain: time budget exhausted")
            ctx.elapsed_ms = (time.monotonic() - started) * 1000
            return ctx
        except KubeError as exc:
            ctx.reason = str(exc)
            ctx.missing.append(f"live state: {exc}")
            ctx.elapsed_ms = (time.monotonic() - started) * 1000
            return ctx
        ctx.cluster_available = True
        ctx.owner_chain = resolved.chain
        ctx.found = not (resolved.target_obj is None and resolved.workload is None and resolved.node is None)
        if not ctx.found:
            ctx.missing.append(f"{target}: not found in the cluster")
        await self._phase_two(ctx, resolved, deadline)
        self._redact_text(ctx)
        ctx.elapsed_ms = (time.monotonic() - started) * 1000
        return ctx

    def _redact_text(self, ctx: ResourceContext) -> None:
        text = self._redact.text
        for pod in ctx.pods:
            pod.scheduling_message = text(pod.scheduling_message) if pod.scheduling_message else None
            for c in pod.containers:
                c.message = text(c.message) if c.message else None
                c.last_message = text(c.last_message) if c.last_message else None
        for event in ctx.events:
            event.message = text(event.message)

    # -- phase 1: owner chain ----------------------------------------------------------------------

    def _resolve(self, target: ResourceRef, deadline: _Deadline) -> _Resolved:
        reader = self._reader
        assert reader is not None
        out = _Resolved()
        ns = target.namespace
        if target.kind == "Node":
            out.node = reader.get("Node", target.name, timeout=deadline.call_timeout())
            out.target_obj = out.node
            return out
        if not reader.knows(target.kind) or (ns is None and target.kind != "Namespace"):
            return out
        if target.kind == "Namespace":
            out.target_obj = reader.get("Namespace", target.name, timeout=deadline.call_timeout())
            return out
        obj = reader.get(target.kind, target.name, ns, timeout=deadline.call_timeout())
        out.target_obj = obj
        if obj is None:
            return out
        if target.kind == "PodDisruptionBudget":
            # The budget's own pods lead to their workload: the PDB is one of its objects.
            query = selectors.to_query((obj.get("spec") or {}).get("selector"))
            pods = self._reader.list("Pod", ns, label_selector=query, limit=5,
                                     timeout=deadline.call_timeout()) if query else []
            out.chain.append(OwnerLink(kind="PodDisruptionBudget", name=target.name))
            if not pods:
                return out
            obj = pods[0]
        elif target.kind == "HorizontalPodAutoscaler":
            ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") in WORKLOAD_KINDS and ref.get("name"):
                obj = reader.get(ref["kind"], ref["name"], ns, timeout=deadline.call_timeout())
                if obj is None:
                    return out
                out.chain.append(OwnerLink(kind="HorizontalPodAutoscaler", name=target.name))
        elif target.kind == "PersistentVolumeClaim":
            user = self._pod_using_claim(target.name, ns, deadline)
            out.chain.append(OwnerLink(kind="PersistentVolumeClaim", name=target.name))
            if user is None:
                return out
            obj = user
        kind = obj.get("kind") or target.kind
        # Walk controller ownerReferences upward: Pod → ReplicaSet → Deployment, Pod → Job → CronJob.
        for _ in range(5):
            meta = obj.get("metadata") or {}
            out.chain.append(OwnerLink(kind=kind, name=meta.get("name", "")))
            if kind in WORKLOAD_KINDS and out.workload is None:
                out.workload_kind, out.workload = kind, obj
                if kind != "Job":
                    break  # a Job's CronJob is recorded in the chain, but the Job stays the workload
            owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
            if owner is None or not reader.knows(owner.get("kind", "")):
                break
            parent = reader.get(owner["kind"], owner["name"], ns, timeout=deadline.call_timeout())
            if parent is None:
                break
            obj, kind = parent, owner["kind"]
        return out

    def _pod_using_claim(self, claim: str, ns: str, deadline: _Deadline) -> dict[str, Any] | None:
        assert self._reader is not None
        for pod in self._reader.list("Pod", ns, limit=500, timeout=deadline.call_timeout()):
            for volume in (pod.get("spec") or {}).get("volumes") or []:
                if (volume.get("persistentVolumeClaim") or {}).get("claimName") == claim:
                    return pod
        return None

    # -- phase 2: everything about the workload, in parallel ---------------------------------------

    async def _phase_two(self, ctx: ResourceContext, resolved: _Resolved, deadline: _Deadline) -> None:
        sections: dict[str, Callable[[], Any]] = {}
        ns = ctx.target.namespace
        workload = resolved.workload
        template: dict[str, Any] = {}
        if self._managed_label is not None:
            sections["scope"] = lambda: self._scope(ctx.target, resolved, deadline)
        if workload is not None:
            ctx.workload = summarize.workload(resolved.workload_kind or "", workload)
            template = ((workload.get("spec") or {}).get("template")) or {}
            if resolved.workload_kind == "CronJob":
                template = (((workload.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get(
                    "template") or {}
            ctx.pod_spec = summarize.pod_spec(template.get("spec") or {})
            ctx.pod_labels = {k: summarize.clip(v, 63) for k, v in
                              list(((template.get("metadata") or {}).get("labels") or {}).items())[:30]}
            sections["pods"] = lambda: self._pods(ns, ctx.workload.selector if ctx.workload else None, deadline)
            sections["revisions"] = lambda: self._revisions(resolved.workload_kind, workload, deadline)
            sections["hpa"] = lambda: self._hpa(ns, resolved.workload_kind, workload, deadline)
            sections["pdbs"] = lambda: self._pdbs(ns, template, deadline)
            sections["pvcs"] = lambda: self._pvcs(ns, resolved.workload_kind, workload, template, deadline)
            sections["network_policies"] = lambda: self._network_policies(ns, template, deadline)
            sections["quotas"] = lambda: self._quotas(ns, deadline)
        elif ctx.target.kind == "Pod" and resolved.target_obj is not None:
            ctx.pods = [summarize.pod(resolved.target_obj)]
            ctx.pod_spec = summarize.pod_spec(resolved.target_obj.get("spec") or {})
            sections["quotas"] = lambda: self._quotas(ns, deadline)
        elif ctx.target.kind == "PersistentVolumeClaim" and resolved.target_obj is not None:
            sections["pvcs"] = lambda: [self._pvc_summary(resolved.target_obj, deadline)]
        elif ctx.target.kind == "Node" and resolved.node is not None:
            ctx.nodes = [summarize.node(resolved.node)]
            sections["pods"] = lambda: self._pods_on_node(ctx.target.name, deadline)
        elif ctx.target.kind == "Namespace" and resolved.target_obj is not None:
            sections["quotas"] = lambda: self._quotas(ctx.target.name, deadline)
        if ns or ctx.target.kind in ("Node", "Namespace"):
            sections["events"] = lambda: self._events(ctx, resolved, deadline)
        owner_meta = (workload or resolved.target_obj or {}).get("metadata") or {}
        if self._gitops_owners and gitops_detect.markers(owner_meta, self._argo_label):
            sections["gitops"] = lambda: self._gitops(owner_meta, ns, deadline)

        names = list(sections)
        tasks = {asyncio.ensure_future(asyncio.to_thread(sections[n])): n for n in names}
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=max(deadline.left(), 0.01))
        for task in pending:
            task.cancel()  # the thread finishes its (deadline-bounded) call; its result is dropped
            ctx.missing.append(f"{tasks[task]}: time budget exhausted")
        results: dict[str, Any] = {}
        for task in done:
            name = tasks[task]
            exc = task.exception()
            if exc is not None:
                ctx.missing.append(f"{name}: {exc if isinstance(exc, KubeError) else type(exc).__name__}")
                logger.debug("context section %s failed", name, exc_info=exc)
            else:
                results[name] = task.result()
        self._apply(ctx, resolved, results)
        if "scope" in results:
            ctx.scope = results["scope"]
        elif self._managed_label is not None:
            ctx.scope = ScopeSummary(managed=None, reason="scope could not be read: "
                                     + next((m for m in ctx.missing if m.startswith("scope")), "unknown"))
        # What needs the pod list and the spec runs after, only if time is left.
        await self._phase_three(ctx, deadline)
        meta = (workload or resolved.target_obj or {}).get("metadata") or {}
        ctx.traits = detect(resolved.workload_kind or ctx.target.kind, meta, has_hpa=ctx.hpa is not None,
                            has_pdb=bool(ctx.pdbs), has_pvc=bool(ctx.pvcs),
                            replicas=ctx.workload.replicas if ctx.workload else None)
        if ctx.gitops is not None and ctx.gitops.tool != "helm":  # the configured instance label counts too
            ctx.traits = ctx.traits.model_copy(update={"gitops_managed": True, "gitops_tool": ctx.gitops.tool})

    async def _phase_three(self, ctx: ResourceContext, deadline: _Deadline) -> None:
        sections: dict[str, Callable[[], Any]] = {}
        if ctx.pods and ctx.target.kind != "Node":
            node_names = sorted({p.node for p in ctx.pods if p.node})[:_MAX_NODES]
            sections["nodes"] = lambda: self._nodes(node_names, deadline)
        if any(p.unschedulable for p in ctx.pods):
            sections["candidate_nodes"] = lambda: self._candidate_nodes(deadline)
        if ctx.target.kind == "Node" and ctx.pods:
            sections["pdbs"] = lambda: self._pdbs_of_pods(ctx.pods, deadline)
        ns = ctx.target.namespace
        refs = sorted({(r.kind, r.name) for c in (ctx.pod_spec.containers if ctx.pod_spec else [])
                       for r in c.config_refs})[:_MAX_CONFIG_OBJECTS]
        if refs and ns:
            sections["config_objects"] = lambda: self._config_objects(ns, refs, deadline)
        hosts = self._named_services(ctx)
        if hosts:
            sections["services"] = lambda: self._services(hosts, ctx.pod_labels, ns, deadline)
        if not sections or deadline.left() <= _MIN_CALL_TIMEOUT_S:
            ctx.missing.extend(f"{name}: time budget exhausted" for name in sections)
            return
        tasks = {asyncio.ensure_future(asyncio.to_thread(fn)): name for name, fn in sections.items()}
        done, pending = await asyncio.wait(tasks, timeout=max(deadline.left(), 0.01))
        for task in pending:
            task.cancel()
            ctx.missing.append(f"{tasks[task]}: time budget exhausted")
        for task in done:
            name = tasks[task]
            exc = task.exception()
            if exc is not None:
                ctx.missing.append(f"{name}: {exc if isinstance(exc, KubeError) else type(exc).__name__}")
                continue
            result = task.result()
            if name == "nodes":
                ctx.nodes = result
            elif name == "candidate_nodes":
                ctx.candidate_nodes = result
            elif name == "config_objects":
                ctx.config_objects, ctx.config_keys = result
            elif name == "services":
                ctx.services = result
            elif name == "pdbs":
                ctx.pdbs = result

    def _scope(self, target: ResourceRef, resolved: _Resolved, deadline: _Deadline) -> ScopeSummary:
        assert self._reader is not None and self._managed_label is not None
        subject = target
        obj = resolved.workload or resolved.target_obj
        if resolved.workload is not None:
            meta = resolved.workload.get("metadata") or {}
            subject = ResourceRef(kind=resolved.workload_kind or target.kind, name=meta.get("name", target.name),
                                  namespace=target.namespace)
        namespace = target.name if target.kind == "Namespace" else target.namespace
        ns_obj = self._reader.get("Namespace", namespace, timeout=deadline.call_timeout()) if namespace else None
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        target_labels = ((resolved.target_obj or {}).get("metadata") or {}).get("labels") or {}
        # The alert's own object opting out counts as much as its workload's.
        if target_labels.get(self._managed_label) == "false":
            labels = target_labels
        decision = scope_rule.decide(
            subject, object_labels=labels, namespace_labels=((ns_obj or {}).get("metadata") or {}).get("labels"),
            namespace_exists=ns_obj is not None, managed_label=self._managed_label,
            managed_namespaces=self._managed_namespaces)
        return ScopeSummary(managed=decision.managed, reason=decision.reason)

    def _pdbs_of_pods(self, pods: list[PodSummary], deadline: _Deadline) -> list[Any]:
        """Budgets covering the pods on a node (what a drain of it has to respect)."""
        assert self._reader is not None
        out = []
        for ns in sorted({p.namespace for p in pods if p.namespace})[:_MAX_NODES]:
            for item in self._reader.list("PodDisruptionBudget", ns, timeout=deadline.call_timeout()):
                selector = (item.get("spec") or {}).get("selector")
                if any(p.namespace == ns and p.labels and selectors.matches(selector, p.labels) for p in pods):
                    out.append(summarize.pdb(item))
        return out[:10]

    def _candidate_nodes(self, deadline: _Deadline) -> list[NodeSummary]:
        assert self._reader is not None
        return [summarize.node(n) for n in self._reader.list("Node", None, limit=_MAX_CANDIDATE_NODES,
                                                             timeout=deadline.call_timeout())]

    def _config_objects(self, ns: str, refs: list[tuple[str, str]], deadline: _Deadline
                        ) -> tuple[dict[str, bool | None], dict[str, list[str]]]:
        assert self._reader is not None
        exists: dict[str, bool | None] = {}
        keys: dict[str, list[str]] = {}
        for kind, name in refs:
            try:
                obj = self._reader.get(kind, name, ns, timeout=deadline.call_timeout())
            except KubeError as exc:
                if exc.status in (401, 403):
                    exists[f"{kind}/{name}"] = None  # not allowed to look: unknown, not missing
                    continue
                raise
            exists[f"{kind}/{name}"] = obj is not None
            if obj is not None and kind == "ConfigMap":
                keys[f"{kind}/{name}"] = sorted([*(obj.get("data") or {}), *(obj.get("binaryData") or {})])[:100]
        return exists, keys

    @staticmethod
    def _named_services(ctx: ResourceContext) -> list[tuple[str, str]]:
        """Services that the workload's own error text names ("<svc>.<ns>"): where to look, not a finding."""
        texts = [c.last_message or "" for p in ctx.pods for c in p.containers]
        texts += [c.message or "" for p in ctx.pods for c in p.containers]
        texts += [e.message for e in ctx.events if e.type == "Warning"]
        found: list[tuple[str, str]] = []
        for text in texts:
            # "<svc>.<ns>.svc" and "<pod>.<svc>.<ns>.svc" (headless): the two labels before ".svc".
            for match in _SVC_DNS.finditer(text.lower()):
                parts = match[1].split(".")
                if len(parts) >= 2 and (parts[-2], parts[-1]) not in found:
                    found.append((parts[-2], parts[-1]))
            for match in _SERVICE_HOST.finditer(text.lower()):
                host = (match[1], match[3])
                if match[3] in ("svc", "cluster", "local", "com", "org", "net", "io") or host in found:
                    continue
                found.append(host)
                if len(found) >= _MAX_SERVICES:
                    return found
        return found

    def _services(self, hosts: list[tuple[str, str]], caller_labels: dict[str, str], caller_ns: str | None,
                  deadline: _Deadline) -> list[ServiceSummary]:
        assert self._reader is not None
        out = []
        hosts = hosts[:_MAX_SERVICES]
        for name, ns in hosts:
            try:
                if self._reader.get("Namespace", ns, timeout=deadline.call_timeout()) is None:
                    continue  # "<word>.<word>" that is not a namespace: not a service reference
                svc = self._reader.get("Service", name, ns, timeout=deadline.call_timeout())
            except KubeError as exc:
                if exc.status in (401, 403):
                    continue
                raise
            if svc is None:
                out.append(ServiceSummary(name=name, namespace=ns, exists=False))
                continue
            ep = self._reader.get("Endpoints", name, ns, timeout=deadline.call_timeout()) or {}
            ready = sum(len(s.get("addresses") or []) for s in ep.get("subsets") or [])
            not_ready = sum(len(s.get("notReadyAddresses") or []) for s in ep.get("subsets") or [])
            blocked: list[PolicyBlock] = []
            selector = (svc.get("spec") or {}).get("selector") or {}
            if selector and caller_labels:
                policies = self._reader.list("NetworkPolicy", ns, timeout=deadline.call_timeout())
                blocked = selectors.ingress_blocks(policies, selector, caller_labels, caller_ns, ns)
            out.append(ServiceSummary(name=name, namespace=ns, exists=True, ready_endpoints=ready,
                                      not_ready_endpoints=not_ready, blocked_by=blocked))
        return out

    def _apply(self, ctx: ResourceContext, resolved: _Resolved, results: dict[str, Any]) -> None:
        if "pods" in results:
            ctx.pods = results["pods"]
        if "revisions" in results and ctx.workload is not None:
            ctx.workload.revisions = results["revisions"]
            if ctx.workload.revision is None and ctx.workload.revisions:
                ctx.workload.revision = ctx.workload.revisions[0].revision
        ctx.hpa = results.get("hpa")
        ctx.pdbs = results.get("pdbs", [])
        ctx.pvcs = results.get("pvcs", [])
        ctx.network_policies = results.get("network_policies", [])
        ctx.quotas = results.get("quotas", [])
        ctx.events = results.get("events", [])
        ctx.gitops = results.get("gitops")

    # -- sections (blocking; run in threads) -------------------------------------------------------

    def _gitops(self, meta: dict[str, Any], ns: str | None, deadline: _Deadline) -> GitOpsInfo | None:
        reader = self._reader
        assert reader is not None

        def get(kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
            return reader.get(kind, name, namespace, timeout=deadline.call_timeout())

        info = gitops_detect.detect(meta, ns, get, instance_label=self._argo_label,
                                    argocd_namespaces=self._argo_namespaces)
        if info is not None and info.repo and gitops_detect.normalise_url(info.repo) in self._gitops_repositories:
            info = info.model_copy(update={"repository_configured": True})
        return info

    def _pods(self, ns: str | None, selector: dict[str, Any] | None, deadline: _Deadline) -> list[PodSummary]:
        query = selectors.to_query(selector)
        if ns is None or query is None:
            return []
        assert self._reader is not None
        pods = [summarize.pod(p) for p in self._reader.list("Pod", ns, label_selector=query, limit=200,
                                                              timeout=deadline.call_timeout())]
        # Unhealthy pods first: they are what the analysis needs to see when the list is cut.
        pods.sort(key=lambda p: (p.ready, -p.restarts, p.name))
        return pods[:_MAX_PODS]

    def _pods_on_node(self, node: str, deadline: _Deadline) -> list[PodSummary]:
        assert self._reader is not None
        pods = [summarize.pod(p) for p in self._reader.list("Pod", None, field_selector=f"spec.nodeName={node}",
                                                              limit=200, timeout=deadline.call_timeout())]
        pods.sort(key=lambda p: (p.ready, -p.restarts, p.name))
        return pods[:_MAX_PODS]

    def _revisions(self, kind: str | None, workload: dict[str, Any], deadline: _Deadline) -> list[RevisionSummary]:
        assert self._reader is not None
        meta = workload.get("metadata") or {}
        uid, ns = meta.get("uid"), meta.get("namespace")
        query = selectors.to_query((workload.get("spec") or {}).get("selector"))
        if kind == "Deployment":
            items = self._reader.list("ReplicaSet", ns, label_selector=query, timeout=deadline.call_timeout())
            convert = summarize.revision_of_replicaset
        elif kind in ("StatefulSet", "DaemonSet"):
            items = self._reader.list("ControllerRevision", ns, label_selector=query,
                                      timeout=deadline.call_timeout())
            convert = summarize.revision_of_controller_revision
        else:
            return []
        owned = [i for i in items if any(o.get("uid") == uid for o in (i.get("metadata") or {}).get("ownerReferences")
                                         or [])]
        revisions = [convert(i) for i in owned]
        revisions.sort(key=lambda r: (r.revision or 0, r.created_at.timestamp() if r.created_at else 0),
                       reverse=True)
        return revisions[:10]

    def _hpa(self, ns: str | None, kind: str | None, workload: dict[str, Any], deadline: _Deadline):
        assert self._reader is not None
        name = (workload.get("metadata") or {}).get("name")
        for item in self._reader.list("HorizontalPodAutoscaler", ns, timeout=deadline.call_timeout()):
            ref = (item.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") == kind and ref.get("name") == name:
                return summarize.hpa(item)
        return None

    def _pdbs(self, ns: str | None, template: dict[str, Any], deadline: _Deadline):
        assert self._reader is not None
        labels = (template.get("metadata") or {}).get("labels") or {}
        return [summarize.pdb(p) for p in self._reader.list("PodDisruptionBudget", ns, timeout=deadline.call_timeout())
                if labels and selectors.matches((p.get("spec") or {}).get("selector"), labels)]

    def _pvcs(self, ns: str | None, kind: str | None, workload: dict[str, Any], template: dict[str, Any],
              deadline: _Deadline) -> list[PvcSummary]:
        assert self._reader is not None
        names = [(v.get("persistentVolumeClaim") or {}).get("claimName")
                 for v in (template.get("spec") or {}).get("volumes") or []]
        names = [n for n in names if n]
        if kind == "StatefulSet":
            spec = workload.get("spec") or {}
            sts = (workload.get("metadata") or {}).get("name")
            for tmpl in spec.get("volumeClaimTemplates") or []:
                tname = (tmpl.get("metadata") or {}).get("name")
                names.extend(f"{tname}-{sts}-{i}" for i in range(min(int(spec.get("replicas") or 1), _MAX_PVCS)))
        out = []
        for name in names[:_MAX_PVCS]:
            obj = self._reader.get("PersistentVolumeClaim", name, ns, timeout=deadline.call_timeout())
            if obj is not None:
                out.append(self._pvc_summary(obj, deadline))
        return out

    def _pvc_summary(self, obj: dict[str, Any], deadline: _Deadline) -> PvcSummary:
        assert self._reader is not None
        expandable = None
        sc_name = (obj.get("spec") or {}).get("storageClassName")
        if sc_name:
            sc = self._reader.get("StorageClass", sc_name, timeout=deadline.call_timeout())
            expandable = bool(sc.get("allowVolumeExpansion")) if sc is not None else None
            return summarize.pvc(obj, expandable).model_copy(update={"storage_class_exists": sc is not None})
        return summarize.pvc(obj, expandable)

    def _network_policies(self, ns: str | None, template: dict[str, Any], deadline: _Deadline):
        assert self._reader is not None
        labels = (template.get("metadata") or {}).get("labels") or {}
        return [summarize.network_policy(p) for p in self._reader.list("NetworkPolicy", ns,
                                                                        timeout=deadline.call_timeout())
                if selectors.matches((p.get("spec") or {}).get("podSelector"), labels)]

    def _quotas(self, ns: str | None, deadline: _Deadline):
        assert self._reader is not None
        return [summarize.quota(q) for q in self._reader.list("ResourceQuota", ns, timeout=deadline.call_timeout())]

    def _nodes(self, names: list[str], deadline: _Deadline) -> list[NodeSummary]:
        assert self._reader is not None
        out = []
        for name in names:
            obj = self._reader.get("Node", name, timeout=deadline.call_timeout())
            if obj is not None:
                out.append(summarize.node(obj))
        return out

    def _events(self, ctx: ResourceContext, resolved: _Resolved, deadline: _Deadline):
        assert self._reader is not None
        if ctx.target.kind == "Node":
            items = self._reader.list("Event", None, field_selector=f"involvedObject.name={ctx.target.name}",
                                      limit=200, timeout=deadline.call_timeout())
            names = None
        else:
            ns = ctx.target.name if ctx.target.kind == "Namespace" else ctx.target.namespace
            items = self._reader.list("Event", ns, limit=500, timeout=deadline.call_timeout())
            names = None if ctx.target.kind == "Namespace" else self._event_names(ctx, resolved)
        owned = self._owned_name_pattern(ctx)
        events = []
        for item in items:
            involved = (item.get("involvedObject") or item.get("regarding") or {}).get("name", "")
            if names is None or involved in names or (owned is not None and owned.fullmatch(involved)):
                events.append(summarize.event(item))
        # Warnings first, then the most recent: the cause is usually a recent warning.
        events.sort(key=lambda e: (e.type != "Warning", -(e.last_seen.timestamp() if e.last_seen else 0)))
        return events[: self._event_limit]

    @staticmethod
    def _event_names(ctx: ResourceContext, resolved: _Resolved) -> set[str]:
        names = {ctx.target.name, *(link.name for link in resolved.chain), *(p.name for p in ctx.pods)}
        if ctx.workload is not None:
            names.add(ctx.workload.name)
        return names

    @staticmethod
    def _owned_name_pattern(ctx: ResourceContext) -> re.Pattern[str] | None:
        """Names the workload's controllers give its ReplicaSets and pods, so events of pods that were
        already replaced are kept, without catching a sibling workload named ``<name>-something``."""
        if ctx.workload is None:
            return None
        name = re.escape(ctx.workload.name)
        suffix = {
            "Deployment": r"-[bcdfghjklmnpqrstvwxz2456789]{5,10}(-[a-z0-9]{5})?",
            "StatefulSet": r"-\d{1,5}",
            "DaemonSet": r"-[a-z0-9]{5}",
            "Job": r"-[a-z0-9]{5}",
            "CronJob": r"-\d{6,12}(-[a-z0-9]{5})?",
        }.get(ctx.workload.kind)
        return re.compile(name + suffix) if suffix else None
