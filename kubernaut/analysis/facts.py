"""Observed conditions of an incident, as a flat ``name → value`` map the rules can test.

A fact is None when it could not be observed (no cluster, section missing): a rule that requires it
does not match, and a guard that tests it does not fire, so missing context degrades to the
alert-name rules instead of to a wrong action.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from kubernaut.analysis.diagnosis import IMAGE_REASONS, OOM_REASONS, quota_no_room
from kubernaut.context.models import ResourceContext
from kubernaut.models.finding import Finding, FindingKind
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

FactValue = bool | int | float | str | None

CONFIG_REASONS = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})


@dataclass
class Situation:
    """Everything a decision is made from: the incident's signals, its target, its context, the facts."""

    signals: Sequence[Signal]
    incident_target: ResourceRef
    context: ResourceContext
    facts: dict[str, FactValue] = field(default_factory=dict)
    incident_id: int | None = None
    # What history says about this incident (intelligence.context_for), one finding per line: data, not orders.
    history: list[str] = field(default_factory=list)
    # The diagnosis (kubernaut.analysis.diagnosis): typed findings with their cause objects.
    findings: list[Finding] = field(default_factory=list)
    # The fleet cluster the incident is on (None: the one cluster of a single-cluster install): the tools read it.
    cluster: str | None = None

    def finding(self, kind: FindingKind | str) -> Finding | None:
        return next((f for f in self.findings if f.kind == kind), None)

    @property
    def firing(self) -> list[Signal]:
        return [s for s in self.signals if s.status == "firing"] or list(self.signals)

    @property
    def labels(self) -> dict[str, str]:
        return self.firing[0].labels if self.firing else {}

    @property
    def workload(self) -> ResourceRef:
        """The workload actions on 'the workload' address: from the cluster when known, else the alert's target."""
        ref = self.context.workload_ref
        if ref is not None and ref.namespace == self.incident_target.namespace:
            return ref
        return self.incident_target


def _recent_rollout(ctx: ResourceContext, window_s: float, now: datetime) -> bool | None:
    workload = ctx.workload
    if workload is None:
        return None
    if workload.kind == "StatefulSet" and len(workload.revisions) >= 2:
        newest = workload.revisions[0]
    elif workload.kind in ("Deployment", "DaemonSet") and len(workload.revisions) >= 2:
        newest = workload.revisions[0]
    else:
        return False
    if newest.created_at is None:
        return None
    return (now - newest.created_at).total_seconds() <= window_s


def observe(signals: Sequence[Signal], ctx: ResourceContext, *, rollout_window_s: float = 3600.0,
            now: datetime | None = None) -> dict[str, FactValue]:
    now = now or datetime.now(timezone.utc)
    firing = [s for s in signals if s.status == "firing"] or list(signals)
    label_reasons = {s.labels.get("reason") for s in firing if s.labels.get("reason")}
    facts: dict[str, FactValue] = {
        "cluster.available": ctx.cluster_available,
        "alert.reason": next(iter(sorted(label_reasons)), None) if label_reasons else None,
    }
    # Facts about the target's state only when the cluster showed it: "not found" is not "no HPA".
    live = ctx.cluster_available and ctx.found
    containers = [c for p in ctx.pods for c in p.containers]
    reasons = {c.reason for c in containers if c.reason}
    last_reasons = {c.last_termination_reason for c in containers if c.last_termination_reason}
    pods_known = live and (bool(ctx.pods) or ctx.workload is not None)
    # The alert's own `reason` label (kube-state-metrics) counts as an observation when the cluster is not.
    facts["pods.oom_killed"] = (bool((reasons | last_reasons) & OOM_REASONS) or bool(label_reasons & OOM_REASONS)) \
        if pods_known or label_reasons else None
    facts["pods.crashlooping"] = ("CrashLoopBackOff" in reasons or "CrashLoopBackOff" in label_reasons) \
        if pods_known or label_reasons else None
    facts["pods.image_pull_error"] = bool((reasons | label_reasons) & IMAGE_REASONS) \
        if pods_known or label_reasons else None
    facts["pods.config_error"] = bool((reasons | label_reasons) & CONFIG_REASONS) \
        if pods_known or label_reasons else None
    facts["pods.unschedulable"] = any(p.unschedulable for p in ctx.pods) if pods_known else None
    facts["pods.not_ready"] = sum(1 for p in ctx.pods if not p.ready) if pods_known else None
    facts["pods.restarts"] = sum(p.restarts for p in ctx.pods) if pods_known else None

    workload = ctx.workload
    facts["workload.kind"] = workload.kind if workload else None
    facts["workload.replicas"] = workload.replicas if workload else None
    facts["workload.paused"] = workload.paused if workload else None
    facts["workload.has_previous_revision"] = len(workload.revisions) >= 2 if workload else None
    facts["workload.recent_rollout"] = _recent_rollout(ctx, rollout_window_s, now) if live else None
    facts["workload.rollout_stalled"] = (
        "ProgressDeadlineExceeded" in (workload.conditions.get("Progressing") or "")
    ) if workload else None
    if workload and len(workload.revisions) >= 2:
        facts["workload.image_changed"] = workload.revisions[0].images != workload.revisions[1].images
    else:
        facts["workload.image_changed"] = None

    traits = ctx.traits
    for name in ("gitops_managed", "helm_managed", "stateful", "has_hpa", "has_pdb", "has_pvc", "single_replica"):
        facts[f"traits.{name.removeprefix('has_').removesuffix('_managed')}"] = getattr(traits, name) if live else None
    # Who owns the desired state (issue 15): the orchestrator's GitOps mode and proposal read these.
    gitops = ctx.gitops if live else None
    for name in ("tool", "app", "app_namespace", "repo", "path", "revision", "auto_sync", "self_heal"):
        facts[f"gitops.{name}"] = getattr(gitops, name) if gitops is not None else None
    facts["gitops.value_files"] = list(gitops.value_files) if gitops is not None else None
    # Whether the change can be proposed in Git (a configured repository): the rules' guard turns spec changes
    # into a recommendation only when it cannot.
    facts["gitops.proposable"] = bool(gitops is not None and gitops.repository_configured) if live else None
    facts["hpa.at_max"] = ctx.hpa.at_max if ctx.hpa else (False if live and workload else None)
    facts["pdb.blocking"] = any((p.disruptions_allowed or 0) == 0 for p in ctx.pdbs) if live else None
    facts["pvc.expandable"] = (all(p.expandable for p in ctx.pvcs) if all(p.expandable is not None for p in ctx.pvcs)
                               else None) if ctx.pvcs else None
    facts["netpol.denies_all"] = any(n.denies_all_ingress or n.denies_all_egress for n in ctx.network_policies) \
        if live else None
    node = ctx.nodes[0] if ctx.target.kind == "Node" and ctx.nodes else None
    facts["node.ready"] = node.ready if node else None
    facts["node.unschedulable"] = node.unschedulable if node else None
    facts["node.pressure"] = bool(node.pressure) if node else None
    facts["quota.blocks_memory_increase"] = quota_no_room(ctx, "memory")
    facts["quota.blocks_cpu_increase"] = quota_no_room(ctx, "cpu")
    failed = [a for a in ctx.actions if a.status in ("failed", "rolled_back", "ineffective")]
    facts["history.failed_actions"] = len(failed)
    facts["history.last_action"] = ctx.actions[0].action if ctx.actions else None
    return facts
