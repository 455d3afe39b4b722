"""The Context API's gathering against the real test control plane (kube-apiserver + simulated kubelet),
and context-driven rule decisions made from it."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.rules import load_rules
from kubernaut.cluster.client import connect
from kubernaut.config import load_config
from kubernaut.config.settings import KubernautConfig
from kubernaut.context.models import ResourceContext
from kubernaut.context.provider import ContextProvider
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from kubernaut.storage.database import Database
from tests.support.polling import eventually

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

SIM_STATE = "sim.kubernaut.io/state"


def config(kubeconfig: str, **analysis: Any) -> KubernautConfig:
    return load_config({"kubernetes": {"kubeconfig": kubeconfig},
                        "analysis": {"context_time_budget_s": 10, **analysis}})


def deployment(name: str, *, state: str | None = None, image: str = "nginx:1.25",
               annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
        "spec": {
            "replicas": 2, "selector": {"matchLabels": labels}, "revisionHistoryLimit": 5,
            "template": {
                "metadata": {"labels": labels, "annotations": {SIM_STATE: state} if state else {}},
                "spec": {"containers": [{"name": "app", "image": image, "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}]},
            },
        },
    }


def served_version(api: client.ApiClient, group: str, preferred: tuple[str, ...]) -> str:
    """API versions differ between clusters (1.20: policy/v1beta1, autoscaling/v2beta2): ask the server."""
    offered = {v.version for v in client.ApisApi(api).get_api_versions().groups if v.name == group
               for v in v.versions}
    return next(v for v in preferred if v in offered)


def create(api: client.ApiClient, path: str, body: dict[str, Any]) -> None:
    """POST a raw manifest (for kinds whose typed client class depends on the served version)."""
    method, url, headers, payload, _ = api.param_serialize(
        method="POST", resource_path=path, body=body, auth_settings=["BearerToken"],
        header_params={"Content-Type": "application/json", "Accept": "application/json"})
    response = api.call_api(method, url, header_params=headers, body=payload)
    response.read()
    assert response.status < 300, (response.status, response.data)


def sig(alertname: str, **labels: str) -> Signal:
    return Signal(alert_id=1, alertname=alertname, status="firing", labels={"alertname": alertname, **labels},
                  starts_at=datetime.now(timezone.utc), am_fingerprint="f")


async def context_when(provider: ContextProvider, target: ResourceRef, predicate: Any, what: str
                       ) -> ResourceContext:
    async def probe() -> ResourceContext | None:
        ctx = await provider.context_for(target)
        return ctx if predicate(ctx) else None

    return await eventually(probe, timeout=60, interval=0.5, what=what)


async def test_workload_context_has_related_objects_traits_and_pod_states(
        kube_testenv: Any, kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    ns = kube_namespace
    body = deployment("web", state="OOMKilled",
                      annotations={"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:x/web"})
    client.AppsV1Api(kube_api_client).create_namespaced_deployment(ns, body)
    hpa_v = served_version(kube_api_client, "autoscaling", ("v2", "v2beta2"))
    create(kube_api_client, f"/apis/autoscaling/{hpa_v}/namespaces/{ns}/horizontalpodautoscalers", {
        "apiVersion": f"autoscaling/{hpa_v}", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 4}})
    pdb_v = served_version(kube_api_client, "policy", ("v1", "v1beta1"))
    create(kube_api_client, f"/apis/policy/{pdb_v}/namespaces/{ns}/poddisruptionbudgets", {
        "apiVersion": f"policy/{pdb_v}", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    create(kube_api_client, f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny-all"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
    client.CoreV1Api(kube_api_client).create_namespaced_resource_quota(ns, {
        "metadata": {"name": "mem"}, "spec": {"hard": {"limits.memory": "300Mi"}}})

    provider = ContextProvider(config(kube_testenv.admin_kubeconfig), connect(
        config(kube_testenv.admin_kubeconfig).kubernetes), None)
    target = ResourceRef(kind="Deployment", name="web", namespace=ns)
    ctx = await context_when(provider, target, lambda c: any(
        cs.last_termination_reason == "OOMKilled" for p in c.pods for cs in p.containers) and len(c.pods) == 2
        # Both pods counted: the quota controller adds them one at a time, and with one the raise still fits.
        and any(q.used.get("limits.memory") == "256Mi" for q in c.quotas), "OOMKilled pods and quota usage")

    assert ctx.cluster_available and ctx.missing == []
    assert [(link.kind, link.name) for link in ctx.owner_chain] == [("Deployment", "web")]
    w = ctx.workload
    assert w is not None and (w.kind, w.replicas, w.containers[0].limits) == ("Deployment", 2, {"memory": "128Mi"})
    assert w.revisions and w.revisions[0].images == ["nginx:1.25"]
    assert ctx.hpa is not None and (ctx.hpa.min_replicas, ctx.hpa.max_replicas) == (1, 4)
    assert [p.name for p in ctx.pdbs] == ["web"]
    assert [(n.name, n.denies_all_ingress, n.denies_all_egress) for n in ctx.network_policies] == [
        ("deny-all", True, True)]
    assert ctx.quotas[0].hard == {"limits.memory": "300Mi"}
    assert ctx.nodes and all(n.ready for n in ctx.nodes)
    assert ctx.events, "scheduling events of the pods"
    t = ctx.traits
    assert (t.gitops_managed, t.gitops_tool, t.has_hpa, t.has_pdb, t.stateful) == (True, "argocd", True, True, False)

    # The same context drives the rules: OOMKilled → raise memory, but GitOps-managed → recommend it instead,
    # and the quota (2 x 128Mi used of 300Mi) would refuse the raise anyway.
    analyzer = Analyzer(config(kube_testenv.admin_kubeconfig).analysis, load_rules(), provider, None)
    result = await analyzer.analyze([sig("KubePodCrashLooping", namespace=ns, pod=ctx.pods[0].name)], target)
    assert result.facts["pods.oom_killed"] is True and result.facts["traits.gitops"] is True
    assert result.facts["quota.blocks_memory_increase"] is True
    assert result.action == "notify_only" and result.rule_id.startswith("oom-at-limit+")
    assert result.alternatives[0].action == "increase_memory_limits"


async def test_pod_target_walks_the_owner_chain(
        kube_testenv: Any, kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    client.AppsV1Api(kube_api_client).create_namespaced_deployment(kube_namespace, deployment("api"))
    cfg = config(kube_testenv.admin_kubeconfig)
    provider = ContextProvider(cfg, connect(cfg.kubernetes), None)
    core = client.CoreV1Api(kube_api_client)
    pods = await eventually(lambda: asyncio.to_thread(
        lambda: core.list_namespaced_pod(kube_namespace, label_selector="app=api").items), timeout=60,
        what="pods of api")
    pod = pods[0].metadata.name
    ctx = await provider.context_for(ResourceRef(kind="Pod", name=pod, namespace=kube_namespace))
    kinds = [link.kind for link in ctx.owner_chain]
    assert kinds == ["Pod", "ReplicaSet", "Deployment"], ctx.owner_chain
    assert ctx.workload is not None and ctx.workload.name == "api"
    assert ResourceRef(kind="Deployment", name="api", namespace=kube_namespace) in ctx.related_refs()


async def test_crashloop_after_a_new_revision_is_rolled_back_and_oom_after_one_is_not(
        kube_testenv: Any, kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    apps = client.AppsV1Api(kube_api_client)
    ns = kube_namespace
    cfg = config(kube_testenv.admin_kubeconfig)
    provider = ContextProvider(cfg, connect(cfg.kubernetes), None)
    analyzer = Analyzer(cfg.analysis, load_rules(), provider, None)
    for name, state, expected in (("shop", "CrashLoopBackOff", "rollback_deployment"),
                                  ("cart", "OOMKilled", "increase_memory_limits")):
        apps.create_namespaced_deployment(ns, deployment(name))
        target = ResourceRef(kind="Deployment", name=name, namespace=ns)
        await context_when(provider, target, lambda c: c.workload is not None and c.workload.ready_replicas == 2,
                           f"{name} revision 1 ready")
        # A new revision (new image) whose pods fail.
        apps.patch_namespaced_deployment(name, ns, {"spec": {"template": {
            "metadata": {"annotations": {SIM_STATE: state}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.26"}]}}}})
        ctx = await context_when(provider, target, lambda c: c.workload is not None and len(c.workload.revisions) == 2
                                 and any(cs.reason == "CrashLoopBackOff" for p in c.pods for cs in p.containers),
                                 f"{name} revision 2 crash-looping")
        assert ctx.workload is not None and ctx.workload.revisions[0].images == ["nginx:1.26"]
        crashing = next(p.name for p in ctx.pods if any(cs.reason for cs in p.containers))
        result = await analyzer.analyze([sig("KubePodCrashLooping", namespace=ns, pod=crashing)], target)
        assert result.facts["workload.recent_rollout"] is True, result.facts
        assert result.action == expected, result
        assert result.target == target
        if state == "OOMKilled":
            assert "rollback_deployment" not in [a.action for a in result.alternatives if a.score > 0.2]


async def test_node_and_pvc_targets(kube_testenv: Any, kube_api_client: client.ApiClient, kube_namespace: str
                                    ) -> None:
    cfg = config(kube_testenv.admin_kubeconfig)
    provider = ContextProvider(cfg, connect(cfg.kubernetes), None)
    core = client.CoreV1Api(kube_api_client)
    node = core.list_node(label_selector="sim.kubernaut.io/node=true").items[0].metadata.name
    ctx = await provider.context_for(ResourceRef(kind="Node", name=node))
    assert ctx.nodes and ctx.nodes[0].name == node and ctx.nodes[0].ready is True
    assert all(p.node == node for p in ctx.pods)

    storage_class = f"fixed-{uuid.uuid4().hex[:6]}"
    client.StorageV1Api(kube_api_client).create_storage_class({
        "metadata": {"name": storage_class}, "provisioner": "example.com/none", "allowVolumeExpansion": False})
    try:
        core.create_namespaced_persistent_volume_claim(kube_namespace, {
            "metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                                                   "resources": {"requests": {"storage": "1Gi"}}}})
        target = ResourceRef(kind="PersistentVolumeClaim", name="data", namespace=kube_namespace)
        ctx = await provider.context_for(target)
        assert [(p.name, p.requested, p.storage_class, p.expandable) for p in ctx.pvcs] == [
            ("data", "1Gi", storage_class, False)]
        analyzer = Analyzer(cfg.analysis, load_rules(), provider, None)
        result = await analyzer.analyze([sig("KubePersistentVolumeFillingUp", namespace=kube_namespace,
                                             persistentvolumeclaim="data")], target)
        assert result.action == "notify_only" and result.rule_id == "pvc-filling-fixed-size"
    finally:
        client.StorageV1Api(kube_api_client).delete_storage_class(storage_class)


async def test_time_budget_bounds_the_gathering_from_a_hung_api_server(tmp_path: Path) -> None:
    # An API server that accepts connections and never answers (a wedged apiserver or a black-holed LB).
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        kubeconfig = tmp_path / "hung.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "hung",
            "clusters": [{"name": "hung", "cluster": {"server": f"https://127.0.0.1:{hung.getsockname()[1]}",
                                                      "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "hung", "context": {"cluster": "hung", "user": "u"}}]}))
        cfg = config(str(kubeconfig))
        provider = ContextProvider(cfg, connect(cfg.kubernetes), None)
        started = time.monotonic()
        ctx = await provider.context_for(ResourceRef(kind="Deployment", name="web", namespace="shop"), budget_s=0.5)
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5, elapsed
    assert ctx.missing == ["owner chain: time budget exhausted"] and ctx.cluster_available is False


async def test_unreachable_cluster_is_reported_not_raised() -> None:
    cfg = load_config({"kubernetes": {"kubeconfig": "/nonexistent/kubeconfig"}})
    provider = ContextProvider(cfg, connect(cfg.kubernetes), None)
    ctx = await provider.context_for(ResourceRef(kind="Deployment", name="web", namespace="x"))
    assert ctx.cluster_available is False and "no kubeconfig" in (ctx.reason or "")


async def test_history_actions_and_similar_incidents_from_the_database(fresh_dsn: str) -> None:
    cfg = load_config({"kubernetes": {"kubeconfig": "/nonexistent/kubeconfig"},
                       "storage": {"dsn": fresh_dsn}})
    db = await Database.connect(cfg.storage)
    try:
        async with db.pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1 FROM schema_migrations WHERE version = 3") == 1

            async def incident(name: str, signals: list[str]) -> int:
                return await conn.fetchval(
                    """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source,
                                              signals, status)
                       VALUES ($1, 'Deployment', $2, 'shop', 'labels', $3, 'resolved') RETURNING id""",
                    uuid.uuid4().hex, name, signals)

            past = await incident("web", ["KubePodCrashLooping"])
            other = await incident("api", ["KubePodCrashLooping", "KubePodNotReady"])
            unrelated = await incident("db", ["KubeJobFailed"])
            for incident_id in (past, other):
                await conn.execute(
                    """INSERT INTO analyses (incident_id, engine, action, target, confidence, root_cause, facts)
                       VALUES ($1, 'rules', 'restart_pod', '{}'::jsonb, 0.6, 'x', '{"pods.crashlooping": true}')""",
                    incident_id)
            await conn.execute(
                """INSERT INTO actions (incident_id, action, target, idempotency_key, dry_run, status)
                   VALUES ($1, 'restart_pod', $2, $3, false, 'failed')""",
                past, {"kind": "Deployment", "name": "web", "namespace": "shop"}, uuid.uuid4().hex)
        provider = ContextProvider(cfg, connect(cfg.kubernetes), db.pool)
        ctx = await provider.context_for(ResourceRef(kind="Deployment", name="web", namespace="shop"),
                                         signals=["KubePodCrashLooping"])
        assert [h.incident_id for h in ctx.history] == [past]
        assert ctx.history[0].action == "restart_pod" and ctx.history[0].action_status == "failed"
        assert [(a.action, a.status) for a in ctx.actions] == [("restart_pod", "failed")]
        assert [s.incident_id for s in ctx.similar] == [other] and unrelated not in [s.incident_id for s in ctx.similar]
    finally:
        await db.close()


async def test_a_fleet_clusters_history_is_its_own(fresh_dsn: str) -> None:
    """The same Deployment name on two clusters is two workloads: each cluster's context sees only its own past
    incidents and actions; rows from before the fleet (no cluster) are the home cluster's."""
    cfg = load_config({"kubernetes": {"kubeconfig": "/nonexistent/kubeconfig"}, "storage": {"dsn": fresh_dsn},
                       "cluster_name": "a"})
    db = await Database.connect(cfg.storage)
    try:
        async with db.pool.acquire() as conn:
            async def incident(cluster: str | None) -> int:
                incident_id = await conn.fetchval(
                    """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source,
                                              signals, status, cluster)
                       VALUES ($1, 'Deployment', 'web', 'shop', 'labels', $2, 'resolved', $3) RETURNING id""",
                    uuid.uuid4().hex, ["KubePodCrashLooping"], cluster)
                await conn.execute(
                    """INSERT INTO actions (incident_id, action, target, idempotency_key, dry_run, status, cluster)
                       VALUES ($1, 'restart_pod', $2, $3, false, 'failed', $4)""",
                    incident_id, {"kind": "Deployment", "name": "web", "namespace": "shop"}, uuid.uuid4().hex,
                    cluster)
                return incident_id

            before_fleet, on_a, on_b = await incident(None), await incident("a"), await incident("b")
        target = ResourceRef(kind="Deployment", name="web", namespace="shop")
        cluster = connect(cfg.kubernetes)
        seen = {}
        for name in ("a", "b", None):
            ctx = await ContextProvider(cfg, cluster, db.pool, cluster_name=name).context_for(target)
            seen[name] = (sorted(h.incident_id for h in ctx.history), sorted(a.incident_id for a in ctx.actions))
        assert seen["a"] == ([before_fleet, on_a], [before_fleet, on_a])
        assert seen["b"] == ([on_b], [on_b])
        assert seen[None] == ([before_fleet, on_a, on_b], [before_fleet, on_a, on_b])  # one cluster: every row
    finally:
        await db.close()
