"""Contexts shaped like the Context API's (Deployment web in namespace shop) and, for each finding rule of
rules.yaml, the alert and context that produce its finding (FINDING_RULE_CASES) with the action expected."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from kubernaut.context.models import (
    ConfigRef,
    ContainerDetail,
    ContainerSpecSummary,
    ContainerStatusSummary,
    EventSummary,
    HpaSummary,
    NetworkPolicySummary,
    NodeSummary,
    PdbSummary,
    PodSpecSummary,
    PodSummary,
    PortSpec,
    ProbeSpec,
    PvcSummary,
    QuotaSummary,
    ResourceContext,
    RevisionSummary,
    ScopeSummary,
    ServiceSummary,
    Taint,
    WorkloadSummary,
)
from kubernaut.models.resource import ResourceRef

NOW = datetime.now(timezone.utc)


NS = "shop"


DEPLOY = ResourceRef(kind="Deployment", name="web", namespace=NS)


POD = "web-5f6d7c8b9-xyz12"


def fields(**changed: str) -> dict[str, str]:
    out = {k: f"same {k}" for k in ("image", "command", "env", "config_refs", "probes", "resources", "node_selector",
                                     "affinity", "tolerations", "ports", "volumes")}
    out.update({k: f"{v} {v}" for k, v in changed.items()})
    return out


def base(*, pods: list[PodSummary] | None = None, rollout: dict[str, str] | None = None, **updates: object
         ) -> ResourceContext:
    """Deployment web, 2 replicas, in a managed namespace; one revision unless ``rollout`` (changed fields)."""
    revisions = [RevisionSummary(revision=1, name="web-1", created_at=NOW - timedelta(days=3), fields=fields())]
    if rollout is not None:
        revisions.insert(0, RevisionSummary(revision=2, name="web-2", created_at=NOW - timedelta(minutes=5),
                                            fields=fields(**rollout)))
    ctx = ResourceContext(
        target=DEPLOY, cluster_available=True, found=True,
        workload=WorkloadSummary(kind="Deployment", name="web", namespace=NS, replicas=2, available_replicas=2,
                                 updated_replicas=2,
                                 containers=[ContainerSpecSummary(name="web", image="web:2",
                                                                  requests={"cpu": "100m", "memory": "64Mi"},
                                                                  limits={"memory": "128Mi"})],
                                 revisions=revisions),
        pods=pods if pods is not None else [running()],
        pod_spec=PodSpecSummary(containers=[ContainerDetail(name="web", ports=[PortSpec(name="http", port=8080)])]),
        scope=ScopeSummary(managed=True, reason="namespace shop is labelled kubernaut.ai/managed=true"),
    )
    return ctx.model_copy(update=updates)


def running(ready: bool = True, restarts: int = 0) -> PodSummary:
    return PodSummary(name=POD, namespace=NS, phase="Running", ready=ready, restarts=restarts,
                      created_at=NOW - timedelta(hours=2),
                      containers=[ContainerStatusSummary(name="web", state="running", ready=ready,
                                                         restart_count=restarts)])


def crashing(*, reason: str = "Error", code: int = 1, message: str | None = None, restarts: int = 4) -> PodSummary:
    return PodSummary(name=POD, namespace=NS, phase="Running", restarts=restarts, created_at=NOW - timedelta(hours=2),
                      containers=[ContainerStatusSummary(
                          name="web", state="waiting", reason="CrashLoopBackOff", restart_count=restarts,
                          last_termination_reason=reason, last_exit_code=code, last_finished_at=NOW,
                          last_message=message)])


def waiting(reason: str, message: str = "") -> PodSummary:
    return PodSummary(name=POD, namespace=NS, phase="Pending", containers=[
        ContainerStatusSummary(name="web", state="waiting", reason=reason, message=message)])


def pending() -> PodSummary:
    return PodSummary(name=POD, namespace=NS, phase="Pending", unschedulable=True,
                      scheduling_message="0/2 nodes are available: 2 node(s) had taint {x: y}.")


def node(name: str, **kw: object) -> NodeSummary:
    defaults: dict[str, object] = {"ready": True, "allocatable": {"cpu": "8", "memory": "32Gi"},
                                   "labels": {"kubernetes.io/hostname": name}}
    return NodeSummary(name=name, **{**defaults, **kw})


def unhealthy() -> list[EventSummary]:
    return [EventSummary(type="Warning", reason="Unhealthy", object=f"Pod/{POD}", count=30,
                         message="Readiness probe failed: HTTP probe failed with statuscode: 503")]


FINDING_RULE_CASES: dict[str, tuple[str, Callable[[], ResourceContext], str, ResourceRef | None]] = {
    "stale-target-healthy": ("KubePodCrashLooping", lambda: base(pods=[running(restarts=3)]), "notify_only", None),
    "target-gone": ("KubePodCrashLooping", lambda: ResourceContext(target=DEPLOY, cluster_available=True,
                                                                   found=False), "notify_only", None),
    "out-of-scope": ("KubePodCrashLooping", lambda: base(pods=[crashing()], scope=ScopeSummary(
        managed=False, reason="namespace shop is not managed by kubernaut")), "notify_only", None),
    "rollout-introduced-failure": ("KubePodCrashLooping", lambda: base(pods=[crashing()], rollout={"image": "new"}),
                                   "rollback_deployment", DEPLOY),
    "rollout-introduced-failure-controller": ("KubePodCrashLooping", lambda: base(
        pods=[crashing()], rollout={"image": "new"},
        workload=base(rollout={"image": "new"}).workload.model_copy(update={"kind": "DaemonSet"})),
        "notify_only", None),
    "untolerated-taint": ("KubePodNotReady", lambda: base(
        pods=[pending()], pod_spec=PodSpecSummary(node_selector={"kubernetes.io/hostname": "n1"}),
        candidate_nodes=[node("n1", taint_details=[Taint(key="dedicated", value="gpu", effect="NoSchedule")]),
                         node("n2")]), "remove_taint", ResourceRef(kind="Node", name="n1")),
    "cordoned-nodes": ("KubeDeploymentReplicasMismatch", lambda: base(
        pods=[pending()], pod_spec=PodSpecSummary(node_selector={"pool": "batch"}),
        candidate_nodes=[node("n1", unschedulable=True, labels={"pool": "batch"}), node("n2")]),
        "uncordon_node", ResourceRef(kind="Node", name="n1")),
    "oom-at-limit": ("KubePodCrashLooping", lambda: base(pods=[crashing(reason="OOMKilled", code=137)]),
                     "increase_memory_limits", DEPLOY),
    "pdb-blocks-drain": ("KubePdbNotEnoughHealthyPods", lambda: base(
        pods=[running().model_copy(update={"node": "n1"})], nodes=[node("n1", unschedulable=True)],
        pdbs=[PdbSummary(name="web-pdb", max_unavailable=0, disruptions_allowed=0)]),
        "relax_pdb", ResourceRef(kind="PodDisruptionBudget", name="web-pdb", namespace=NS)),
    "network-policy-denies": ("KubePodNotReady", lambda: base(
        pods=[running(ready=False)], events=unhealthy(),
        network_policies=[NetworkPolicySummary(name="lockdown", policy_types=["Ingress"], denies_all_ingress=True,
                                               created_at=NOW - timedelta(minutes=8))]),
        "remove_network_policy", ResourceRef(kind="NetworkPolicy", name="lockdown", namespace=NS)),
    "pvc-filling-expandable": ("KubePersistentVolumeFillingUp", lambda: base(
        pvcs=[PvcSummary(name="data", expandable=True, storage_class="fast")]),
        "expand_pvc", ResourceRef(kind="PersistentVolumeClaim", name="data", namespace=NS)),
    "pvc-filling-fixed-size": ("KubePersistentVolumeFillingUp", lambda: base(
        pvcs=[PvcSummary(name="data", expandable=False, storage_class="slow")]), "notify_only", None),
    "hpa-at-max": ("KubeHpaMaxedOut", lambda: base(hpa=HpaSummary(name="web", max_replicas=6, current_replicas=6,
                                                                  at_max=True)),
                   "update_hpa", ResourceRef(kind="HorizontalPodAutoscaler", name="web", namespace=NS)),
    "dependency-unavailable": ("KubePodCrashLooping", lambda: base(
        pods=[crashing(message="dial tcp 10.0.0.9:5432: connect: connection refused (orders-db.data)")],
        services=[ServiceSummary(name="orders-db", namespace="data", exists=True, ready_endpoints=0,
                                 not_ready_endpoints=1)]), "notify_only", None),
    "quota-exceeded": ("KubeDeploymentReplicasMismatch", lambda: base(
        pods=[], workload=base().workload.model_copy(update={"conditions": {"ReplicaFailure": "True: FailedCreate"},
                                                             "available_replicas": 0}),
        quotas=[QuotaSummary(name="pods", hard={"pods": "4"}, used={"pods": "4"})]), "notify_only", None),
    "config-missing": ("KubeContainerWaiting", lambda: base(
        pods=[waiting("CreateContainerConfigError", 'configmap "web-config" not found')],
        pod_spec=PodSpecSummary(containers=[ContainerDetail(name="web", config_refs=[
            ConfigRef(kind="ConfigMap", name="web-config")])]), config_objects={"ConfigMap/web-config": False}),
        "notify_only", None),
    "command-not-found": ("KubePodCrashLooping", lambda: base(pods=[crashing(code=127, message="exec: not found")]),
                          "notify_only", None),
    "crash-on-config": ("KubePodCrashLooping", lambda: base(
        pods=[crashing(message="fatal: missing required env DATABASE_URL")]), "notify_only", None),
    "probe-misconfigured": ("KubePodNotReady", lambda: base(
        pods=[running(ready=False)], events=unhealthy(),
        pod_spec=PodSpecSummary(containers=[ContainerDetail(name="web", ports=[PortSpec(port=8080)],
                                                            readiness=ProbeSpec(kind="http", port=9090))])),
        "notify_only", None),
    "dependency-failing": ("KubePodCrashLooping", lambda: base(
        pods=[crashing(message="redis: dial tcp: lookup cache on 10.96.0.10:53: no such host")]), "notify_only",
        None),
    "scheduling-selector": ("KubePodNotReady", lambda: base(
        pods=[pending()], pod_spec=PodSpecSummary(node_selector={"disk": "nvme"}), candidate_nodes=[node("n1")]),
        "notify_only", None),
    "scheduling-affinity": ("KubePodNotReady", lambda: base(
        pods=[pending()], pod_spec=PodSpecSummary(required_anti_affinity=True),
        workload=base().workload.model_copy(update={"replicas": 3}), candidate_nodes=[node("n1"), node("n2")]),
        "notify_only", None),
    "scheduling-capacity": ("KubePodNotReady", lambda: base(
        pods=[pending()], workload=base().workload.model_copy(update={"containers": [
            ContainerSpecSummary(name="web", requests={"cpu": "64"})]}), candidate_nodes=[node("n1")]),
        "notify_only", None),
    "restarts-without-change": ("KubePodCrashLooping", lambda: base(pods=[crashing(restarts=40)]),
                                "collect_diagnostics", None),
    "pvc-pending": ("KubePodNotReady", lambda: base(
        pods=[pending()], candidate_nodes=[node("n1")],
        pvcs=[PvcSummary(name="data", phase="Pending", storage_class="gp3", storage_class_exists=False)]),
        "notify_only", None),
}
