"""Context summaries from raw Kubernetes JSON, selectors, traits, and the facts observed from them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kubernaut.analysis.facts import observe
from kubernaut.context import selectors, summarize
from kubernaut.context.models import ResourceContext, RevisionSummary, WorkloadSummary
from kubernaut.context.traits import detect
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal

NOW = datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


POD_JSON = {
    "metadata": {"name": "web-5f6d7c8b9-xyz12", "namespace": "shop", "creationTimestamp": iso(NOW),
                 "labels": {"app": "web", "pod-template-hash": "5f6d7c8b9"}},
    "spec": {"nodeName": "sim-node-1"},
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
        "containerStatuses": [{
            "name": "web", "ready": False, "restartCount": 7,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": iso(NOW)}},
        }],
    },
}


def test_pod_summary_keeps_reasons_and_restarts() -> None:
    pod = summarize.pod(POD_JSON)
    assert pod.ready is False and pod.restarts == 7 and pod.node == "sim-node-1"
    (c,) = pod.containers
    assert (c.state, c.reason, c.last_termination_reason, c.last_exit_code) == ("waiting", "CrashLoopBackOff",
                                                                               "OOMKilled", 137)
    assert pod.revision_hash == "5f6d7c8b9"


def test_unschedulable_pod_is_recognized() -> None:
    pending = {"metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}
    assert summarize.pod(pending).unschedulable is True


def test_workload_summary_and_revision_from_replicaset() -> None:
    deployment = {
        "metadata": {"name": "web", "namespace": "shop", "generation": 3,
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "strategy": {"type": "RollingUpdate"},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                     {"name": "web", "image": "nginx:1.25", "resources": {"limits": {"memory": "128Mi"}}}]}}},
        "status": {"readyReplicas": 1, "observedGeneration": 3, "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]},
    }
    w = summarize.workload("Deployment", deployment)
    assert (w.replicas, w.ready_replicas, w.revision, w.strategy) == (3, 1, 2, "RollingUpdate")
    assert w.containers[0].limits == {"memory": "128Mi"}
    assert "ProgressDeadlineExceeded" in w.conditions["Progressing"]
    rs = {"metadata": {"name": "web-5f6d7c8b9", "creationTimestamp": iso(NOW),
                       "annotations": {"deployment.kubernetes.io/revision": "2"}},
          "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}},
          "status": {"replicas": 3}}
    rev = summarize.revision_of_replicaset(rs)
    assert (rev.revision, rev.images, rev.replicas) == (2, ["nginx:1.26"], 3)


def test_event_text_is_clipped_and_stripped_of_control_characters() -> None:
    ev = summarize.event({"type": "Warning", "reason": "BackOff", "message": "x\x1b[31m" + "y" * 1000,
                          "involvedObject": {"kind": "Pod", "name": "web-1"}, "count": 4})
    assert "\x1b" not in ev.message and len(ev.message) <= 240 and ev.count == 4 and ev.object == "Pod/web-1"


def test_selectors_match_and_serialize() -> None:
    sel = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                                              {"key": "legacy", "operator": "DoesNotExist"}]}
    assert selectors.to_query(sel) == "app=web,tier in (a,b),!legacy"
    assert selectors.matches(sel, {"app": "web", "tier": "a"})
    assert not selectors.matches(sel, {"app": "web", "tier": "c"})
    assert not selectors.matches(sel, {"app": "web", "tier": "a", "legacy": "1"})
    assert selectors.matches({}, {"anything": "x"}) and not selectors.matches(None, {})


def test_traits_detect_gitops_helm_and_state() -> None:
    argo = detect("Deployment", {"annotations": {"argocd.argoproj.io/tracking-id": "app:apps/Deployment:shop/web"}},
                  has_hpa=True, has_pdb=False, has_pvc=False, replicas=1)
    assert argo.gitops_managed and argo.gitops_tool == "argocd" and argo.has_hpa and argo.single_replica
    flux = detect("StatefulSet", {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}, has_hpa=False,
                  has_pdb=True, has_pvc=True, replicas=3)
    assert flux.gitops_tool == "flux" and flux.stateful and flux.has_pdb
    helm = detect("Deployment", {"labels": {"app.kubernetes.io/managed-by": "Helm"},
                                 "annotations": {"meta.helm.sh/release-name": "web"}},
                  has_hpa=False, has_pdb=False, has_pvc=False, replicas=2)
    assert helm.helm_managed and helm.helm_release == "web" and not helm.gitops_managed


def _signal(**labels: str) -> Signal:
    return Signal(alert_id=1, alertname="KubePodCrashLooping", status="firing", labels=labels, starts_at=NOW,
                  am_fingerprint="f")


def test_facts_from_a_live_context() -> None:
    target = ResourceRef(kind="Deployment", name="web", namespace="shop")
    workload = WorkloadSummary(kind="Deployment", name="web", namespace="shop", replicas=2, revisions=[
        RevisionSummary(revision=3, name="web-c", images=["web:3"], created_at=NOW - timedelta(minutes=5)),
        RevisionSummary(revision=2, name="web-b", images=["web:2"], created_at=NOW - timedelta(days=2)),
    ])
    ctx = ResourceContext(target=target, cluster_available=True, found=True, workload=workload,
                          pods=[summarize.pod(POD_JSON)])
    facts = observe([_signal()], ctx, rollout_window_s=3600, now=NOW)
    assert facts["pods.oom_killed"] is True and facts["pods.crashlooping"] is True
    assert facts["workload.recent_rollout"] is True and facts["workload.image_changed"] is True
    assert facts["workload.has_previous_revision"] is True and facts["pods.restarts"] == 7
    later = observe([_signal()], ctx, rollout_window_s=60, now=NOW)
    assert later["workload.recent_rollout"] is False


def test_without_a_cluster_facts_are_unobserved_not_false() -> None:
    target = ResourceRef(kind="Deployment", name="w", namespace="s")
    for ctx in (ResourceContext(target=target), ResourceContext(target=target, cluster_available=True, found=False)):
        facts = observe([_signal()], ctx)
        assert facts["workload.recent_rollout"] is None and facts["pods.crashlooping"] is None
        assert facts["traits.gitops"] is None and facts["quota.blocks_memory_increase"] is None
        assert facts["pdb.blocking"] is None and facts["hpa.at_max"] is None


def test_related_refs_stay_in_the_incident_namespace() -> None:
    target = ResourceRef(kind="Deployment", name="web", namespace="shop")
    ctx = ResourceContext(target=target, cluster_available=True, pods=[summarize.pod(POD_JSON)],
                          workload=WorkloadSummary(kind="Deployment", name="web", namespace="shop"))
    refs = ctx.related_refs()
    assert ResourceRef(kind="Pod", name="web-5f6d7c8b9-xyz12", namespace="shop") in refs
    assert all(r.namespace == "shop" for r in refs)
