"""Diagnosis: from the gathered context to typed findings, each naming the object that is the cause.

Runs between context and decision. Every finding is computed from structured fields (status,
spec, conditions, event *reasons*, whether an object exists); free text — event messages, the
container's termination message (its log tail), annotations — is only quoted as evidence. Where
text is the only hint (a log line naming a missing variable, a refused connection), the finding is
marked ``source="text"``: it can stop an action (a restart will not fix that), never justify one.

What could not be observed is said (``context.unknown``), never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from kubernaut.context.models import ContainerStatusSummary, NodeSummary, PodSummary, ResourceContext
from kubernaut.execution.catalog import parse_quantity
from kubernaut.models.finding import Finding, FindingKind
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

K = FindingKind

OOM_REASONS = frozenset({"OOMKilled"})
IMAGE_REASONS = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_REASONS = frozenset({"CreateContainerConfigError"})
OOM_ALERTS = frozenset({"KubeContainerOOMKilled", "ContainerOOMKilled", "KubePodOOMKilled", "OOMKilled",
                        "ContainerOOMKilledRecently"})
# Alerts that describe the health of pods or their controller: healthy pods now mean the alert is stale.
# (A full volume, a maxed autoscaler or an error rate is not contradicted by ready pods.)
HEALTH_ALERTS = frozenset({
    "KubePodCrashLooping", "PodCrashLooping", "KubePodNotReady", "KubeDeploymentReplicasMismatch",
    "KubeStatefulSetReplicasMismatch", "KubeDaemonSetRolloutStuck", "KubeDeploymentRolloutStuck",
    "KubeContainerWaiting", "KubeDeploymentGenerationMismatch", "KubeStatefulSetGenerationMismatch",
    "KubeStatefulSetUpdateNotRolledOut", "KubeDaemonSetNotScheduled", "KubeDaemonSetMisScheduled",
    "KubeContainerOOMKilled", "ContainerOOMKilled", "KubePodOOMKilled", "OOMKilled", "ContainerOOMKilledRecently",
    "KubeNodeNotReady", "KubeNodeUnreachable", "KubeNodeReadinessFlapping", "KubeNodePressure",
})
# Restarts at which "one more restart" stops being a remedy: the container has been restarted that often.
RESTARTS_WITHOUT_CHANGE = 10
# A container that terminated this recently is not "healthy again".
RECENT_TERMINATION = timedelta(minutes=10)
# Taints the node lifecycle sets from conditions: they describe the node, nobody "added" them.
SYSTEM_TAINT_PREFIXES = ("node.kubernetes.io/", "node.cloudprovider.kubernetes.io/")

# Which pod-template fields of a rollout can explain which failure (for rollout.suspect).
RELATED_FIELDS: dict[FindingKind, frozenset[str]] = {
    K.CRASH: frozenset({"image", "command", "env", "config_refs", "volumes"}),
    K.CRASH_ON_CONFIG: frozenset({"image", "command", "env", "config_refs", "volumes"}),
    K.COMMAND_NOT_FOUND: frozenset({"image", "command"}),
    K.CONFIG_MISSING: frozenset({"env", "config_refs", "volumes"}),
    K.IMAGE_PULL: frozenset({"image"}),
    K.NODE_SELECTOR_UNMATCHED: frozenset({"node_selector", "affinity"}),
    K.AFFINITY_UNSATISFIABLE: frozenset({"affinity"}),
    K.UNTOLERATED_TAINT: frozenset({"node_selector", "affinity", "tolerations"}),
    K.INSUFFICIENT_RESOURCES: frozenset({"resources"}),
    K.PROBE_MISCONFIGURED: frozenset({"probes", "ports"}),
    K.PROBE_FAILING: frozenset({"probes", "ports", "image", "env", "config_refs"}),
}
# A regression alert with no failure visible in the pods (error rate, latency): the code or its config.
REGRESSION_FIELDS = frozenset({"image", "command", "env", "config_refs"})

_MISSING_CONFIG_TEXT = re.compile(
    r"(missing|not set|required|undefined|no such file|not found|cannot (read|open|load)|unable to (read|open|load)"
    r"|failed to (read|open|load))[^\n]{0,80}(env|variable|config|setting|file|key|secret)"
    r"|(env|variable|config|setting|file|key)[^\n]{0,80}(missing|not set|is required|undefined|no such file|not found)",
    re.IGNORECASE)
_DEPENDENCY_TEXT = re.compile(
    r"connection refused|no such host|i/o timeout|could not resolve|name resolution|temporary failure in name"
    r"|no route to host|connection reset|dial tcp|upstream connect error|deadline exceeded|timed out",
    re.IGNORECASE)
_QUOTA_NAME = re.compile(r"exceeded quota: ([a-z0-9]([-a-z0-9.]*[a-z0-9])?)")
_INSUFFICIENT = re.compile(r"Insufficient (cpu|memory|pods|[a-z0-9./-]+)", re.IGNORECASE)


def _clip(text: str | None, limit: int = 240) -> str:
    value = " ".join((text or "").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _quote(text: str | None, limit: int = 240) -> str:
    """Untrusted text as evidence: one line, bounded, visibly quoted."""
    return f"“{_clip(text, limit)}”"


def _tail(text: str | None, limit: int = 240) -> str:
    """A log tail as evidence: its end is where a process says why it stopped."""
    value = " ".join((text or "").split())
    if len(value) <= limit:
        return f"“{value}”"
    head = limit * 2 // 5  # and its start says what it was doing
    return f"“{value[:head]} … {value[-(limit - head - 3):]}”"


def _around(text: str | None, pattern: re.Pattern[str] | None = None, limit: int = 240) -> str:
    """Quote the part of a long text where ``pattern`` (a dependency error) matched."""
    value = " ".join((text or "").split())
    match = (pattern or _DEPENDENCY_TEXT).search(value)
    if match is None or len(value) <= limit:
        return _quote(value, limit)
    start = max(0, min(match.start() - limit // 2, len(value) - limit))
    return f"“{'…' if start else ''}{value[start:start + limit]}{'…' if start + limit < len(value) else ''}”"


def _quantity(text: str | None) -> Decimal | None:
    if not text:
        return None
    try:
        return parse_quantity(text)
    except ValueError:
        return None


class Diagnosis:
    """One incident's findings; build with :func:`diagnose`."""

    def __init__(self, signals: Sequence[Signal], target: ResourceRef, ctx: ResourceContext, now: datetime,
                 rollout_window_s: float) -> None:
        self.signals = [s for s in signals if s.status == "firing"] or list(signals)
        self.target = target
        self.ctx = ctx
        self.now = now
        self.window = timedelta(seconds=rollout_window_s)
        self.findings: list[Finding] = []
        self.workload = ctx.workload_ref if ctx.workload_ref is not None else target
        self.live = ctx.cluster_available and ctx.found

    def add(self, kind: FindingKind, summary: str, *, cause: ResourceRef | None = None,
            subject: ResourceRef | None = None, evidence: Sequence[str] = (), source: str = "cluster",
            **data: str | int | float | bool | None) -> Finding:
        finding = Finding(kind=kind, summary=_clip(summary, 400), cause=cause, subject=subject or self.workload,
                          evidence=[_clip(e, 300) for e in evidence][:6], data=data, source=source)  # type: ignore[arg-type]
        self.findings.append(finding)
        return finding

    def has(self, *kinds: FindingKind) -> bool:
        return any(f.kind in kinds for f in self.findings)

    # -- the whole pass ------------------------------------------------------------------------------

    def run(self) -> list[Finding]:
        self.context_gaps()
        self.scope()
        if self.ctx.cluster_available and not self.ctx.found:
            self.add(K.TARGET_MISSING, f"{self.target} does not exist in the cluster (any more).",
                     cause=self.target, subject=self.target)
        self.ownership()
        self.alert_findings()
        if self.live:
            self.nodes()
            self.containers()
            self.scheduling()
            self.quota()
            self.probes()
            self.dependencies()
            self.network_policies()
            self.pdbs()
            self.hpa()
            self.pvcs()
            self.jobs()
            self.rollout()
            self.restarts()
            self.healthy()
        return self.findings

    # -- what is not known -----------------------------------------------------------------------------

    def context_gaps(self) -> None:
        ctx = self.ctx
        if not ctx.cluster_available:
            self.add(K.CONTEXT_UNKNOWN, f"Live state of {self.target} is unknown: {ctx.reason or 'no cluster access'}.",
                     subject=self.target, section="live state")
        elif ctx.missing:
            self.add(K.CONTEXT_UNKNOWN, "Not observed: " + "; ".join(ctx.missing[:5]), subject=self.target,
                     evidence=ctx.missing[:6], section="partial")

    def scope(self) -> None:
        scope = self.ctx.scope
        if scope is None:
            return
        if scope.managed is False:
            self.add(K.OUT_OF_SCOPE, f"Out of scope: {scope.reason}", cause=self.workload, evidence=[scope.reason])
        elif scope.managed is None:
            self.add(K.OUT_OF_SCOPE, f"Scope could not be verified ({scope.reason}): treated as out of scope.",
                     cause=self.workload, evidence=[scope.reason], unknown=True)

    def ownership(self) -> None:
        traits = self.ctx.traits
        if not self.live:
            return
        if traits.gitops_managed:
            owner = self.ctx.gitops.summary() if self.ctx.gitops is not None else traits.gitops_tool or "GitOps"
            self.add(K.GITOPS_MANAGED, f"{self.workload} is managed by {owner}: a live change "
                     "is reverted or drifts from Git; the fix belongs in the repository.", cause=self.workload,
                     tool=traits.gitops_tool)
        if traits.helm_managed:
            self.add(K.HELM_MANAGED, f"{self.workload} belongs to Helm release {traits.helm_release or '?'}: a live "
                     "change is overwritten by the next upgrade; the fix belongs in the chart values.",
                     cause=self.workload, release=traits.helm_release)

    # -- alert-derived (structured labels, not text) -------------------------------------------------

    def alert_findings(self) -> None:
        for s in self.signals:
            labels = s.labels
            if not self.live:
                self._alert_states(s)
            if s.alertname in ("KubePersistentVolumeFillingUp", "KubePersistentVolumeInodesFillingUp"):
                claim, ns = labels.get("persistentvolumeclaim"), labels.get("namespace")
                if claim and ns:
                    self.add(K.PVC_FILLING, f"PersistentVolumeClaim {ns}/{claim} is filling up ({s.alertname}).",
                             cause=ResourceRef(kind="PersistentVolumeClaim", name=claim, namespace=ns),
                             source="alert", inodes=s.alertname.endswith("InodesFillingUp"))
            elif s.alertname in ("CPUThrottlingHigh", "KubeCPUThrottlingHigh"):
                self.add(K.CPU_THROTTLED,
                         f"Container {labels.get('container', '?')} of {self.workload} is CPU-throttled.",
                         cause=self.workload, source="alert", container=labels.get("container"))

    def _alert_states(self, s: Signal) -> None:
        """Without the cluster's view, what an alert's own rule asserts (kube-state-metrics series), as
        source "alert"; with the cluster's view, the cluster's current state decides instead."""
        labels = s.labels
        if s.alertname in OOM_ALERTS or labels.get("reason") in OOM_REASONS:
            self.add(K.OOM_KILLED, f"{s.alertname}: a container of {self.workload} was OOMKilled "
                     f"(alert label reason={labels.get('reason', '-')}); the cluster was not observed.",
                     cause=self.workload, source="alert", container=labels.get("container"))
        elif s.alertname in ("KubeNodeNotReady", "KubeNodeUnreachable") and labels.get("node"):
            node = ResourceRef(kind="Node", name=labels["node"])
            self.add(K.NODE_NOT_READY, f"{s.alertname}: node {labels['node']} is not ready (per the alert; the cluster "
                     "was not observed).", cause=node, subject=node, source="alert")
        elif s.alertname == "KubeNodePressure" and labels.get("node"):
            node = ResourceRef(kind="Node", name=labels["node"])
            self.add(K.NODE_PRESSURE, f"Node {labels['node']} reports {labels.get('condition', 'pressure')} (per the "
                     "alert).", cause=node, subject=node, source="alert")
        elif s.alertname == "KubeHpaMaxedOut" and labels.get("horizontalpodautoscaler") and labels.get("namespace"):
            hpa = ResourceRef(kind="HorizontalPodAutoscaler", name=labels["horizontalpodautoscaler"],
                              namespace=labels["namespace"])
            self.add(K.HPA_AT_MAX, f"HPA {labels['horizontalpodautoscaler']} runs at its maximum replicas (per the "
                     "alert).", cause=hpa, subject=hpa, source="alert")

    # -- nodes ---------------------------------------------------------------------------------------

    def nodes(self) -> None:
        if self.target.kind != "Node":
            return
        for node in self.ctx.nodes[:1]:
            ref = ResourceRef(kind="Node", name=node.name)
            if node.ready is False:
                self.add(K.NODE_NOT_READY, f"Node {node.name} is NotReady.", cause=ref, subject=ref)
            if node.pressure:
                self.add(K.NODE_PRESSURE, f"Node {node.name} reports {', '.join(node.pressure)}.", cause=ref,
                         subject=ref, conditions=",".join(node.pressure))

    # -- containers ------------------------------------------------------------------------------------

    def _statuses(self) -> list[tuple[PodSummary, ContainerStatusSummary]]:
        return [(p, c) for p in self.ctx.pods for c in p.containers]

    def _limit(self, container: str, resource: str) -> str | None:
        workload = self.ctx.workload
        if workload is None:
            return None
        for c in workload.containers:
            if c.name == container:
                return c.limits.get(resource)
        return None

    def _recent(self, at: datetime | None) -> bool:
        return at is not None and self.now - at <= RECENT_TERMINATION

    def containers(self) -> None:
        statuses = self._statuses()
        oom = [(p, c) for p, c in statuses if c.last_termination_reason in OOM_REASONS or c.reason in OOM_REASONS]
        if oom:
            p, c = oom[0]
            limit = self._limit(c.name, "memory")
            self.add(K.OOM_KILLED, f"Container {c.name} of {self.workload} was OOMKilled (exit 137)"
                     + (f" at its memory limit {limit}" if limit else " (no memory limit set)")
                     + f"; {sum(x.restart_count for _, x in oom)} restarts.",
                     cause=self.workload, evidence=[f"pod {p.name} container {c.name}: last state terminated "
                                                    f"OOMKilled at {c.last_finished_at or '?'}"],
                     container=c.name, limit=limit, restarts=c.restart_count)
        config = [(p, c) for p, c in statuses if c.reason in CONFIG_REASONS]
        waiting_now = any(p.phase == "Pending" or any(c.state == "waiting" for c in p.containers)
                          for p in self.ctx.pods)
        # A reference to a missing object matters while pods cannot start (running pods already have it).
        missing_refs = self._missing_config_refs() if waiting_now or config else []
        if config or missing_refs:
            evidence = [f"pod {p.name} container {c.name}: waiting {c.reason} {_quote(c.message)}" for p, c in config]
            evidence += [f"{ref} referenced by the pod template does not exist" for ref in missing_refs]
            evidence += [f"event {e.reason} on {e.object}: {_quote(e.message)}" for e in self.ctx.events
                         if e.reason == "FailedMount"][:2]
            names = ", ".join(missing_refs) or "a ConfigMap/Secret or key"
            self.add(K.CONFIG_MISSING, f"Containers of {self.workload} cannot start: {names} they need is missing. "
                     "A restart does not create it.", cause=self.workload, evidence=evidence,
                     objects=", ".join(missing_refs) or None)
        elif waiting_now and any(e.reason == "FailedMount" for e in self.ctx.events):
            # Only while a pod still waits: old FailedMount events outlive the problem they reported.
            event = next(e for e in self.ctx.events if e.reason == "FailedMount")
            self.add(K.CONFIG_MISSING, f"Pods of {self.workload} cannot mount a volume they need.", cause=self.workload,
                     evidence=[f"event FailedMount on {event.object}: {_quote(event.message)}"])
        pulls = [(p, c) for p, c in statuses if c.reason in IMAGE_REASONS]
        if pulls:
            p, c = pulls[0]
            image = next((x.image for x in (self.ctx.workload.containers if self.ctx.workload else [])
                          if x.name == c.name), None)
            revisions = self.ctx.workload.revisions if self.ctx.workload else []
            first = " It is the first revision: there is none to return to." if self.ctx.workload is not None \
                and self.ctx.workload.kind == "Deployment" and len(revisions) < 2 else ""
            self.add(K.IMAGE_PULL, f"Image {image or '?'} of container {c.name} cannot be pulled ({c.reason}).{first}",
                     cause=self.workload, evidence=[f"pod {p.name}: {c.reason} {_quote(c.message)}"], image=image)
        not_found = [(p, c) for p, c in statuses if c.last_exit_code in (126, 127) or
                     (c.reason in ("RunContainerError", "ContainerCannotRun", "CreateContainerError"))]
        if not_found:
            p, c = not_found[0]
            self.add(K.COMMAND_NOT_FOUND, f"Container {c.name} of {self.workload} cannot run its command "
                     f"(exit {c.last_exit_code if c.last_exit_code is not None else c.reason}).",
                     cause=self.workload, evidence=[f"pod {p.name}: {_tail(c.last_message or c.message)}"],
                     exit_code=c.last_exit_code)
        crashes = [(p, c) for p, c in statuses
                   if c.last_termination_reason not in (None, "Completed", *OOM_REASONS)
                   and c.last_exit_code not in (None, 0, 126, 127)
                   and (c.reason == "CrashLoopBackOff" or (self._recent(c.last_finished_at) and not c.ready))]
        if crashes:
            p, c = crashes[0]
            said = f" Its last output: {_tail(c.last_message, 320)}" if c.last_message else ""
            self.add(K.CRASH, f"Container {c.name} of {self.workload} exits with code {c.last_exit_code} "
                     f"({c.restart_count} restarts).{said}", cause=self.workload,
                     evidence=[f"pod {p.name} container {c.name}: terminated {c.last_termination_reason} "
                               f"exit {c.last_exit_code}" + (f", last message {_tail(c.last_message)}"
                                                             if c.last_message else "")],
                     exit_code=c.last_exit_code, restarts=c.restart_count)
        for p, c in crashes + not_found:
            if c.last_message and _MISSING_CONFIG_TEXT.search(c.last_message):
                self.add(K.CRASH_ON_CONFIG, f"Container {c.name} of {self.workload} stops on missing configuration "
                         "(its last output says so): a restart does not add it.", cause=self.workload,
                         evidence=[f"pod {p.name} container {c.name} last output: {_tail(c.last_message)}"],
                         source="text")
                break

    def _missing_config_refs(self) -> list[str]:
        spec = self.ctx.pod_spec
        if spec is None:
            return []
        out: list[str] = []
        for c in spec.containers:
            for ref in c.config_refs:
                key = f"{ref.kind}/{ref.name}"
                exists = self.ctx.config_objects.get(key)
                if ref.optional or exists is None:
                    continue
                if exists is False:
                    label = f"{ref.kind} {ref.name}"
                elif ref.key and ref.kind == "ConfigMap" and key in self.ctx.config_keys \
                        and ref.key not in self.ctx.config_keys[key]:
                    label = f"key {ref.key} of {ref.kind} {ref.name}"
                else:
                    continue
                if label not in out:
                    out.append(label)
        return out

    # -- scheduling --------------------------------------------------------------------------------------

    def _tolerated(self, key: str, value: str | None, effect: str) -> bool:
        for t in (self.ctx.pod_spec.tolerations if self.ctx.pod_spec else []):
            if t.effect and t.effect != effect:
                continue
            if t.operator == "Exists" and (t.key is None or t.key == key):
                return True
            if t.key == key and (t.value or None) == (value or None):
                return True
        return False

    def _admits(self, node: NodeSummary) -> bool:
        """nodeSelector and required node affinity (structured): may the pods run on ``node`` at all?"""
        spec = self.ctx.pod_spec
        if spec is None:
            return True
        if not all(node.labels.get(k) == v for k, v in spec.node_selector.items()):
            return False
        terms = [t for t in spec.node_affinity_terms if t]
        return not terms or any(all(_requirement_holds(r.key, r.operator, r.values, node.labels) for r in term)
                                for term in terms)

    def _requests(self, resource: str) -> Decimal:
        workload = self.ctx.workload
        return sum(((_quantity(c.requests.get(resource)) or Decimal(0)) for c in (workload.containers if workload
                                                                                   else [])), Decimal(0))

    def scheduling(self) -> None:
        pending = [p for p in self.ctx.pods if p.unschedulable]
        if not pending:
            return
        message = next((p.scheduling_message for p in pending if p.scheduling_message), None)
        quoted = [f"pod {pending[0].name} unschedulable: {_quote(message)}"] if message else []
        selector = self.ctx.pod_spec.node_selector if self.ctx.pod_spec else {}
        nodes: list[NodeSummary] = self.ctx.candidate_nodes
        if not nodes:
            self.add(K.CONTEXT_UNKNOWN, f"{len(pending)} pods of {self.workload} are Pending; the nodes could not be "
                     "read to say why.", evidence=quoted, section="nodes")
            return
        matching = [n for n in nodes if self._admits(n)]
        if not matching:
            what = f"the nodeSelector {selector}" if selector else "the required node affinity"
            self.add(K.NODE_SELECTOR_UNMATCHED, f"No node matches {what} of {self.workload}: "
                     f"its {len(pending)} Pending pods cannot be scheduled.", cause=self.workload,
                     evidence=quoted, selector=", ".join(f"{k}={v}" for k, v in selector.items()) or None)
            return
        cpu, memory = self._requests("cpu"), self._requests("memory")
        blocked: list[tuple[NodeSummary, list]] = []
        roomy = 0
        for node in matching:
            untolerated = [t for t in node.taint_details if t.effect in ("NoSchedule", "NoExecute")
                           and not t.key.startswith(SYSTEM_TAINT_PREFIXES)
                           and not self._tolerated(t.key, t.value, t.effect)]
            fits = (cpu <= (_quantity(node.allocatable.get("cpu")) or Decimal(10**9))
                    and memory <= (_quantity(node.allocatable.get("memory")) or Decimal(10**30)))
            roomy += fits
            if untolerated or node.unschedulable or node.ready is False:
                blocked.append((node, untolerated))
            elif fits:
                # A node the pods may use and fit on: taints and cordons elsewhere are not why they wait.
                blocked = []
                break
        else:
            blocked = blocked if roomy else []
        # Only when every node the pods could use is closed is opening one the remedy (and only a healthy one).
        for node, untolerated in blocked[:3]:
            ref = ResourceRef(kind="Node", name=node.name)
            if node.ready is False or node.pressure:
                continue  # a sick node is not a remedy: do not ask to open it
            for taint in untolerated[:1]:
                self.add(K.UNTOLERATED_TAINT, f"Node {node.name} has taint {taint.key}"
                         + (f"={taint.value}" if taint.value else "") + f":{taint.effect}, which the pods of "
                         f"{self.workload} do not tolerate, and no other node they may use is open; "
                         f"{len(pending)} pods are Pending.", cause=ref,
                         evidence=quoted, key=taint.key, value=taint.value, effect=taint.effect, node=node.name)
            if node.unschedulable and not untolerated:
                self.add(K.NODES_CORDONED, f"Node {node.name}, which the pods of {self.workload} may use, is cordoned "
                         f"and no other is open; {len(pending)} pods are Pending.", cause=ref, evidence=quoted,
                         node=node.name)
        if blocked:
            return
        for k, v in (("cpu", cpu), ("memory", memory)):
            largest = max((_quantity(n.allocatable.get(k)) or Decimal(0) for n in matching), default=Decimal(0))
            if v > 0 and largest > 0 and v > largest:
                self.add(K.INSUFFICIENT_RESOURCES, f"Pods of {self.workload} request {k} {v} per pod, more than any "
                         f"matching node can allocate ({largest}).", cause=self.workload, evidence=quoted, resource=k)
                return
        spec = self.ctx.pod_spec
        replicas = (self.ctx.workload.replicas if self.ctx.workload else None) or 0
        usable = [n for n in matching if not n.unschedulable and n.ready is not False and not any(
            t.effect in ("NoSchedule", "NoExecute") and not self._tolerated(t.key, t.value, t.effect)
            for t in n.taint_details)]
        if spec is not None and spec.required_anti_affinity and replicas > len(usable):
            self.add(K.AFFINITY_UNSATISFIABLE, f"{self.workload} requires pod anti-affinity for {replicas} replicas "
                     f"but only {len(usable)} nodes can take its pods.", cause=self.workload, evidence=quoted)
            return
        if spec is not None and spec.required_node_affinity and message and "affinity" in message:
            self.add(K.NODE_SELECTOR_UNMATCHED, f"The required node affinity of {self.workload} matches no "
                     "schedulable node.", cause=self.workload, evidence=quoted, source="text")
            return
        if message and "volume node affinity conflict" in message:
            self.add(K.INSUFFICIENT_RESOURCES, f"The pods of {self.workload} need a volume pinned to a node they "
                     "cannot use now (volume node affinity conflict): the node holding the data is unavailable.",
                     cause=self.workload, evidence=quoted, source="text", resource="volume")
            return
        if message:
            insufficient = _INSUFFICIENT.search(message)
            if insufficient:
                self.add(K.INSUFFICIENT_RESOURCES, f"Nodes lack {insufficient[1]} for the pods of {self.workload} "
                         "(capacity, not the workload).", cause=self.workload, evidence=quoted,
                         resource=insufficient[1], source="text")
            elif spec is not None and spec.required_anti_affinity and "anti-affinity" in message:
                self.add(K.AFFINITY_UNSATISFIABLE, f"The pod anti-affinity of {self.workload} cannot be satisfied.",
                         cause=self.workload, evidence=quoted, source="text")

    def quota(self) -> None:
        workload = self.ctx.workload
        if workload is None:
            return
        failure = workload.conditions.get("ReplicaFailure", "")
        failed_create = [e for e in self.ctx.events if e.reason == "FailedCreate"]
        if not (failure.startswith("True") or failed_create):
            return
        # quota name → the FailedCreate message that names it
        named = {m[1]: e.message for e in failed_create if (m := _QUOTA_NAME.search(e.message or ""))}
        for q in self.ctx.quotas:
            full = [k for k, hard in q.hard.items() if (h := _quantity(hard)) is not None
                    and (u := _quantity(q.used.get(k))) is not None and u >= h]
            if not full and q.name in named:
                # The controller's FailedCreate names this quota: the new pod would not fit what is left.
                full = [k for k in q.hard if k in named[q.name]][:4] or list(q.hard)[:2]
            if full:
                ref = ResourceRef(kind="ResourceQuota", name=q.name, namespace=self.target.namespace)
                evidence = [f"ResourceQuota {q.name}: " + ", ".join(f"{k} used {q.used.get(k)} of {q.hard[k]}"
                                                                     for k in full[:4])]
                evidence += [f"event FailedCreate on {e.object}: {_quote(e.message)}" for e in failed_create[:2]]
                self.add(K.QUOTA_EXCEEDED, f"ResourceQuota {q.name} is exhausted ({', '.join(full[:4])}): the "
                         f"controller cannot create pods of {self.workload}; restarting or scaling makes it worse.",
                         cause=ref, evidence=evidence, quota=q.name, resources=", ".join(full[:4]))
                return

    # -- probes, dependencies, network policies ---------------------------------------------------------

    def probes(self) -> None:
        spec = self.ctx.pod_spec
        unready_running = [p for p in self.ctx.pods if not p.ready and p.phase == "Running"
                           and any(c.state == "running" and not c.ready for c in p.containers)]
        restarting = {c.name for p in self.ctx.pods for c in p.containers if c.restart_count > 0}
        if not unready_running and not restarting:
            return
        for c in spec.containers if spec is not None else []:
            if not c.ports:
                continue
            for label, probe in (("readiness", c.readiness), ("liveness", c.liveness)):
                if probe is None or probe.kind not in ("http", "tcp") or probe.port is None:
                    continue
                # A wrong readiness probe shows as running-but-unready pods; a wrong liveness probe as restarts.
                if (label == "readiness" and not unready_running) or (label == "liveness" and c.name not in restarting):
                    continue
                ok = probe.port in {p.port for p in c.ports} if isinstance(probe.port, int) else \
                    (probe.port.isdigit() and int(probe.port) in {p.port for p in c.ports}) or \
                    probe.port in {p.name for p in c.ports if p.name}
                if not ok:
                    ports = ", ".join(f"{p.name + '/' if p.name else ''}{p.port}" for p in c.ports)
                    effect = "the process runs but never becomes ready" if label == "readiness" else \
                        "the kubelet kills a healthy process again and again"
                    self.add(K.PROBE_MISCONFIGURED, f"The {label} probe of container {c.name} of {self.workload} "
                             f"checks port {probe.port}, which the container does not serve (ports: {ports}): "
                             f"{effect}.", cause=self.workload,
                             evidence=self._unhealthy_events(), container=c.name, probe=label, port=str(probe.port))
                    return
        unhealthy = self._unhealthy_events()
        if unhealthy and unready_running:
            self.add(K.PROBE_FAILING, f"{len(unready_running)} running pods of {self.workload} fail their readiness "
                     "probe.", cause=self.workload, evidence=unhealthy)

    def _unhealthy_events(self) -> list[str]:
        return [f"event Unhealthy on {e.object} (x{e.count}): {_quote(e.message)}" for e in self.ctx.events
                if e.reason == "Unhealthy"][:3]

    def dependencies(self) -> None:
        texts = [(p.name, c.last_message) for p in self.ctx.pods for c in p.containers if c.last_message]
        texts += [(e.object, e.message) for e in self.ctx.events if e.type == "Warning"]
        failing = [(who, text) for who, text in texts if text and _DEPENDENCY_TEXT.search(text)]
        # Quote where the error is: the end of a log tail, the start of an event message.
        own_ns = self.target.namespace
        for svc in self.ctx.services:
            ref = ResourceRef(kind="Service", name=svc.name, namespace=svc.namespace)
            if svc.namespace == own_ns and self.ctx.workload is not None and svc.name == self.ctx.workload.name:
                continue  # its own Service: not a dependency
            recent_blocks = [b for b in svc.blocked_by if b.created_at is not None
                             and self.now - b.created_at <= self.window]
            for block in recent_blocks[:1]:
                policy = ResourceRef(kind="NetworkPolicy", name=block.name, namespace=block.namespace)
                self.add(K.NETWORK_POLICY_DENIES, f"NetworkPolicy {block.name} in {block.namespace}, created "
                         f"{int((self.now - block.created_at).total_seconds() // 60)} min ago, selects the pods "
                         f"behind Service {svc.name} that {self.workload} calls and {block.reason}: the calls are "
                         "dropped.", cause=policy, evidence=[f"{who}: {_around(t)}" for who, t in failing[:2]],
                         policy=block.name, service=f"{svc.name}.{svc.namespace}", directions="ingress")
            if recent_blocks:
                continue
            if svc.blocked_by:
                block = svc.blocked_by[0]
                self.add(K.DEPENDENCY_FAILING, f"Calls from {self.workload} to Service {svc.namespace}/{svc.name} are "
                         f"not admitted by its long-standing NetworkPolicy {block.name} ({block.reason}).",
                         cause=ResourceRef(kind="NetworkPolicy", name=block.name, namespace=block.namespace),
                         evidence=[f"{who}: {_around(t)}" for who, t in failing[:2]])
                continue
            if not svc.exists:
                self.add(K.DEPENDENCY_UNAVAILABLE, f"{self.workload} calls Service {svc.namespace}/{svc.name}, which "
                         "does not exist.", cause=ref, evidence=[f"{who}: {_around(t)}" for who, t in failing[:2]],
                         service=f"{svc.name}.{svc.namespace}")
            elif svc.ready_endpoints == 0:
                self.add(K.DEPENDENCY_UNAVAILABLE, f"{self.workload} depends on Service {svc.namespace}/{svc.name}, "
                         f"which has no ready endpoints ({svc.not_ready_endpoints or 0} not ready): the dependency is "
                         "down, not this workload.", cause=ref,
                         evidence=[f"{who}: {_around(t)}" for who, t in failing[:2]],
                         service=f"{svc.name}.{svc.namespace}")
        if failing and not self.has(K.DEPENDENCY_UNAVAILABLE):
            self.add(K.DEPENDENCY_FAILING, f"{self.workload} reports failing calls to something it depends on.",
                     cause=self.workload, evidence=[f"{who}: {_around(text)}" for who, text in failing[:3]],
                     source="text")

    def _troubled(self) -> bool:
        return any(not p.ready for p in self.ctx.pods) or self.has(K.CRASH, K.DEPENDENCY_FAILING, K.PROBE_FAILING)

    def network_policies(self) -> None:
        if not self._troubled():
            return
        for policy in self.ctx.network_policies:
            directions = [d for d, on in (("ingress", policy.denies_all_ingress), ("egress", policy.denies_all_egress))
                          if on]
            if not directions:
                continue
            recent = policy.created_at is not None and self.now - policy.created_at <= self.window
            newest_pod = max((p.created_at for p in self.ctx.pods if p.created_at), default=None)
            if not recent or (newest_pod is not None and policy.created_at is not None
                              and policy.created_at < newest_pod - self.window):
                continue  # long-standing policy: part of the baseline, not what just broke
            ref = ResourceRef(kind="NetworkPolicy", name=policy.name, namespace=self.target.namespace)
            self.add(K.NETWORK_POLICY_DENIES, f"NetworkPolicy {policy.name}, created "
                     f"{int((self.now - policy.created_at).total_seconds() // 60)} min ago, selects the pods of "
                     f"{self.workload} and denies all {' and '.join(directions)} traffic.", cause=ref,
                     evidence=self._unhealthy_events(), policy=policy.name, directions=",".join(directions))

    # -- disruption budgets, autoscaling, storage, jobs ---------------------------------------------------

    def pdbs(self) -> None:
        cordoned = {n.name for n in self.ctx.nodes if n.unschedulable}
        on_cordoned = [p for p in self.ctx.pods if p.node in cordoned]
        all_healthy = bool(self.ctx.pods) and all(p.ready for p in self.ctx.pods)
        for pdb in self.ctx.pdbs:
            if pdb.disruptions_allowed is None or pdb.disruptions_allowed != 0:
                continue
            evidence = [f"PDB {pdb.name}: minAvailable={pdb.min_available} maxUnavailable={pdb.max_unavailable}, "
                        f"healthy {pdb.current_healthy}, desired {pdb.desired_healthy}, disruptions allowed 0"]
            ref = ResourceRef(kind="PodDisruptionBudget", name=pdb.name, namespace=pdb.namespace or
                              self.target.namespace)
            # Never satisfiable: every pod is healthy and still none may go (maxUnavailable 0, or minAvailable
            # at or above the pods there are, e.g. left from before a scale-down): every drain hangs on it.
            never = all_healthy and (pdb.max_unavailable in (0, "0%") or (
                pdb.current_healthy is not None and pdb.desired_healthy is not None
                and pdb.desired_healthy >= pdb.current_healthy))
            if on_cordoned:
                self.add(K.PDB_BLOCKS_EVICTION, f"PodDisruptionBudget {pdb.name} allows 0 disruptions while "
                         f"{len(on_cordoned)} of its pods sit on cordoned node(s) {', '.join(sorted(cordoned))}: the "
                         "drain cannot evict them.", cause=ref, evidence=evidence, pdb=pdb.name)
            elif never:
                self.add(K.PDB_BLOCKS_EVICTION, f"PodDisruptionBudget {pdb.name} can never allow a voluntary "
                         f"disruption (minAvailable={pdb.min_available}, maxUnavailable={pdb.max_unavailable}, "
                         f"{pdb.current_healthy} healthy pods): every drain of their nodes hangs.", cause=ref,
                         evidence=evidence, pdb=pdb.name)

    def hpa(self) -> None:
        hpa = self.ctx.hpa
        if hpa is None or not hpa.at_max:
            return
        ref = ResourceRef(kind="HorizontalPodAutoscaler", name=hpa.name, namespace=self.target.namespace)
        self.add(K.HPA_AT_MAX, f"HorizontalPodAutoscaler {hpa.name} runs at its maximum "
                 f"(maxReplicas {hpa.max_replicas}, current {hpa.current_replicas}).", cause=ref,
                 max_replicas=hpa.max_replicas, current=hpa.current_replicas)

    def pvcs(self) -> None:
        for pvc in self.ctx.pvcs:
            ref = ResourceRef(kind="PersistentVolumeClaim", name=pvc.name, namespace=self.target.namespace)
            if pvc.phase == "Pending" and any(p.unschedulable or p.phase == "Pending" for p in self.ctx.pods):
                missing = pvc.storage_class_exists is False
                self.add(K.PVC_PENDING, f"PersistentVolumeClaim {pvc.name} is not bound"
                         + (f": its StorageClass {pvc.storage_class} does not exist" if missing else
                            f" (StorageClass {pvc.storage_class or 'default'})")
                         + f", so the pods of {self.workload} cannot start.", cause=ref,
                         storage_class=pvc.storage_class, storage_class_exists=pvc.storage_class_exists)
            if pvc.expandable is True:
                self.add(K.PVC_EXPANDABLE, f"The StorageClass {pvc.storage_class} of {pvc.name} allows expansion.",
                         cause=ref, subject=ref)
            elif pvc.expandable is False:
                self.add(K.PVC_NOT_EXPANDABLE, f"The StorageClass {pvc.storage_class or '?'} of {pvc.name} does not "
                         "allow volume expansion.", cause=ref, subject=ref)

    def jobs(self) -> None:
        workload = self.ctx.workload
        if workload is None or workload.kind != "Job":
            return
        if workload.conditions.get("Failed", "").startswith("True"):
            self.add(K.JOB_FAILED, f"Job {workload.name} failed ({workload.conditions['Failed']}).",
                     cause=self.workload)

    # -- rollout ---------------------------------------------------------------------------------------

    def rollout(self) -> None:
        workload = self.ctx.workload
        if workload is None or workload.kind not in ("Deployment", "DaemonSet", "StatefulSet") \
                or len(workload.revisions) < 2:
            return
        newest, previous = workload.revisions[0], workload.revisions[1]
        if newest.created_at is None:
            return
        age = self.now - newest.created_at
        if age > self.window:
            return
        changed = sorted(k for k, v in newest.fields.items()
                         if previous.fields.get(k, "").split(" ", 1)[0] != v.split(" ", 1)[0])
        evidence = [f"{k}: {previous.fields.get(k, '').split(' ', 1)[-1]} → {newest.fields[k].split(' ', 1)[-1]}"
                    for k in changed[:4]]
        minutes = int(age.total_seconds() // 60)
        self.add(K.ROLLOUT_RECENT, f"{self.workload} rolled out revision {newest.revision} {minutes} min ago; "
                 f"changed: {', '.join(changed) or 'nothing in the pod spec'}.", cause=self.workload,
                 evidence=evidence, revision=newest.revision, previous=previous.revision,
                 changed=",".join(changed), age_s=int(age.total_seconds()))
        if self.has(K.OOM_KILLED):
            return  # the previous revision needs the same memory: raise it, never roll back
        related = [(f.kind, RELATED_FIELDS[f.kind] & set(changed)) for f in self.findings
                   if f.kind in RELATED_FIELDS and RELATED_FIELDS[f.kind] & set(changed)]
        if not related and not self._failure_visible():
            started = [s.starts_at for s in self.signals if s.starts_at is not None]
            after = not started or min(started) >= newest.created_at - timedelta(minutes=2)
            fields = REGRESSION_FIELDS & set(changed)
            if fields and after:
                related = [(None, fields)]
        if related:
            kind, fields = related[0]
            what = kind.value if kind is not None else "the alert, which started after it"
            self.add(K.ROLLOUT_SUSPECT, f"The rollout of {self.workload} {minutes} min ago changed "
                     f"{', '.join(sorted(fields))}, which explains {what}; revision {previous.revision} ran before.",
                     cause=self.workload, evidence=evidence, revision=newest.revision, previous=previous.revision,
                     fields=",".join(sorted(fields)), explains=kind.value if kind is not None else "alert")

    def _failure_visible(self) -> bool:
        return self.has(K.OOM_KILLED, K.CONFIG_MISSING, K.PVC_PENDING, K.IMAGE_PULL, K.COMMAND_NOT_FOUND, K.CRASH,
                        K.QUOTA_EXCEEDED,
                        K.UNTOLERATED_TAINT, K.NODES_CORDONED, K.NODE_SELECTOR_UNMATCHED, K.INSUFFICIENT_RESOURCES,
                        K.AFFINITY_UNSATISFIABLE, K.PROBE_MISCONFIGURED, K.PROBE_FAILING, K.DEPENDENCY_UNAVAILABLE,
                        K.NETWORK_POLICY_DENIES, K.DEPENDENCY_FAILING)

    def restarts(self) -> None:
        if self.has(K.ROLLOUT_RECENT):
            return
        worst = max(((p, c) for p, c in self._statuses()), key=lambda pc: pc[1].restart_count, default=None)
        if worst is not None and worst[1].restart_count >= RESTARTS_WITHOUT_CHANGE and not worst[1].ready:
            p, c = worst
            self.add(K.RESTARTS_WITHOUT_CHANGE, f"Container {c.name} of {self.workload} has restarted "
                     f"{c.restart_count} times with no change to its spec: another restart will not fix it.",
                     cause=self.workload, evidence=[f"pod {p.name}: {c.restart_count} restarts"],
                     restarts=c.restart_count)

    def healthy(self) -> None:
        """Healthy now: every pod ready, nothing terminated recently, the controller has what it wants."""
        if self._failure_visible() or self.has(K.TARGET_MISSING, K.ROLLOUT_SUSPECT, K.HPA_AT_MAX):
            return
        if not any(s.alertname in HEALTH_ALERTS for s in self.signals):
            return
        ctx = self.ctx
        if self.target.kind == "Node":
            node = ctx.nodes[0] if ctx.nodes else None
            if node is not None and node.ready and not node.pressure and not node.unschedulable:
                self.add(K.TARGET_HEALTHY, f"Node {node.name} is Ready, schedulable and without pressure now: the "
                         "alert describes a past state.", cause=self.target, subject=self.target)
            return
        if not ctx.pods:
            return
        recent = [c for p in ctx.pods for c in p.containers if self._recent(c.last_finished_at)]
        waiting = [c for p in ctx.pods for c in p.containers if c.state != "running"]
        workload = ctx.workload
        short = workload is not None and workload.kind in ("Deployment", "StatefulSet") and (
            (workload.replicas or 0) > workload.available_replicas
            or (workload.kind == "Deployment" and (workload.replicas or 0) > workload.updated_replicas)
            or workload.conditions.get("ReplicaFailure", "").startswith("True")
            or "ProgressDeadlineExceeded" in workload.conditions.get("Progressing", ""))
        if all(p.ready for p in ctx.pods) and not recent and not waiting and not short:
            restarts = sum(p.restarts for p in ctx.pods)
            self.add(K.TARGET_HEALTHY, f"All {len(ctx.pods)} pods of {self.workload} are ready now and none terminated "
                     f"in the last {int(RECENT_TERMINATION.total_seconds() // 60)} minutes ({restarts} restarts in "
                     "total): the alert describes a past state.", cause=self.workload,
                     evidence=[f"pod {p.name}: ready, {p.restarts} restarts" for p in ctx.pods[:3]])


def _requirement_holds(key: str, operator: str, values: list[str], labels: dict[str, str]) -> bool:
    value = labels.get(key)
    if operator == "In":
        return value in values
    if operator == "NotIn":
        return value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def quota_no_room(ctx: ResourceContext, resource: str, factor: float = 1.5) -> bool | None:
    """Whether raising every container's ``resource`` limit by ``factor`` would exceed a ResourceQuota."""
    if ctx.workload is None or not ctx.cluster_available:
        return None
    key = f"limits.{resource}"
    current = sum((_quantity(c.limits.get(resource)) or Decimal(0)) for c in ctx.workload.containers)
    needed = current * Decimal(str(factor - 1)) * Decimal(max(ctx.workload.replicas or 1, 1))
    for quota in ctx.quotas:
        hard, used = _quantity(quota.hard.get(key)), _quantity(quota.used.get(key)) or Decimal(0)
        if hard is None:
            continue
        # With no limit set the increase is sized from requests; any quota near full blocks it.
        if (needed > 0 and used + needed > hard) or (needed == 0 and used >= hard * Decimal("0.9")):
            return True
    return False


def diagnose(signals: Sequence[Signal], target: ResourceRef, ctx: ResourceContext, *,
             rollout_window_s: float = 3600.0, now: datetime | None = None) -> list[Finding]:
    diagnosis = Diagnosis(signals, target, ctx, now or datetime.now(timezone.utc), rollout_window_s)
    findings = diagnosis.run()
    for resource, kind in (("memory", K.QUOTA_NO_ROOM_MEMORY), ("cpu", K.QUOTA_NO_ROOM_CPU)):
        if quota_no_room(ctx, resource):
            diagnosis.add(kind, f"A ResourceQuota in {target.namespace} leaves no room for higher {resource} limits "
                          f"of {diagnosis.workload}.", cause=diagnosis.workload, resource=resource)
    return findings
