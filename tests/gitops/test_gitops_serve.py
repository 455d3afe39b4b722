"""GitOps end to end on the Serve app: an OOM on an Argo CD-managed Deployment in production arrives as an
AlertManager webhook; the analysis finds the owner (tracking-id → Application); the policy says propose; the
orchestrator opens a PR (real git daemon, local GitHub REST peer) with the memory limit raised in the manifest's
own file, comments kept, and changes nothing live; the test merges it, the reconciler (Argo CD's part) applies
main, and the workflow sees the sync, verifies the rollout and completes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from kubernetes import client

from kubernaut.cluster.api import ClusterAPI
from kubernaut.execution.kube import Kube
from kubernaut.execution.operations.objects import rollout_state
from tests.gitops.test_workflow_gitops import TOKEN, manifest
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    admin_fixture,
    executor_role_fixture,
    pods,
)
from tests.support.forge_peer import ForgePeer
from tests.support.git_server import GitServer
from tests.support.gitops_cluster import Reconciler, create_object
from tests.support.live_app import live_application
from tests.support.polling import eventually
from tests.system.test_learning_live import webhook

pytestmark = pytest.mark.k8s
NAME = "serve-shop"


@pytest.fixture(scope="module")
def argo_reader(kube_api_client: client.ApiClient) -> Iterator[None]:
    """What deploy/10-rbac.yaml's kubernaut-reader grants on Applications, for the app's (executor) identity."""
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    role = "kubernaut-test-gitops-owners"
    rbac.create_cluster_role({"metadata": {"name": role}, "rules": [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "list", "watch"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": role}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubernaut-executor"}]})
    yield
    rbac.delete_cluster_role_binding(role)
    rbac.delete_cluster_role(role)


@pytest_asyncio.fixture(loop_scope="session")
async def gitops_app(serve_app: Any, fresh_dsn: str, kube_testenv: Any, executor_role: Any, argo_reader: None,
                     gitops_crds: ClusterAPI, git_server: GitServer, kube_namespace: str
                     ) -> AsyncIterator[tuple[str, ForgePeer, Reconciler, str]]:
    ns = kube_namespace
    git_server.create(NAME, {"apps/shop/deployment.yaml": manifest(ns), "README.md": "deploy repo\n"})
    peer = ForgePeer(git_server.bare(NAME), TOKEN, f"org/{NAME}")
    reconciler = Reconciler(gitops_crds, git_server.bare(NAME), "apps/shop")
    try:
        async with live_application(
            serve_app, "gitops", fresh_dsn, kube_testenv.executor_kubeconfig,
            execution={"cooldown_s": 0},
            orchestration={"stabilization_s": 0, "verify_interval_s": 0.5, "verify_timeout_s": 90,
                           "autonomy_min_cases": 0, "autonomy_min_lower_bound": 0, "cooldown_s": 0},
            gitops={"poll_interval_s": 0.5, "sync_timeout_s": 90, "repositories": [{
                "url": f"https://git.example.com/org/{NAME}.git", "clone_url": git_server.url(NAME),
                "forge": "github", "api_url": peer.url, "project": f"org/{NAME}", "token": TOKEN}]},
            work={"poll_interval_s": 0.5, "lease_s": 10},
        ) as base:
            yield base, peer, reconciler, ns
    finally:
        peer.stop()


async def test_oom_on_an_argo_deployment_is_proposed_merged_synced_and_verified(
        gitops_app: tuple[str, ForgePeer, Reconciler, str], admin: Kube, gitops_crds: ClusterAPI,
        git_server: GitServer) -> None:
    base, peer, reconciler, ns = gitops_app
    # Production: the policy's default for a GitOps-managed target there is propose (no live change).
    await admin.patch("Namespace", ns, None, {"metadata": {"labels": {"kubernaut.ai/environment": "production"}}})
    reconciler.sync_once()
    create_object(gitops_crds, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                "metadata": {"name": "shop", "namespace": ns}, "spec": {
        "source": {"repoURL": f"https://git.example.com/org/{NAME}", "path": "apps/shop", "targetRevision": "main"},
        "destination": {"namespace": ns}, "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}})

    async def running() -> str | None:
        live = await pods(admin, ns, "shop")
        return live[0]["metadata"]["name"] if live and (live[0].get("status") or {}).get("podIP") else None

    pod = await eventually(running, timeout=60, what="the shop pod")
    # The running pod is OOMKilled (the simulated kubelet reads the pod's own annotation: the pods of the fixed
    # revision, made from the template, run healthy).
    await admin.patch("Pod", pod, ns, {"metadata": {"annotations": {SIM_STATE: "OOMKilled"}}})

    async def oom() -> bool:
        for p in await pods(admin, ns, "shop"):
            for status in (p.get("status") or {}).get("containerStatuses") or []:
                if ((status.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled":
                    return True
        return False

    await eventually(oom, timeout=60, what="an OOMKilled shop pod")
    from datetime import datetime, timezone
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        assert (await http.post("/api/v1/alerts", json=webhook(ns, pod, "firing", datetime.now(timezone.utc))
                                )).status_code == 200

        async def workflow_in(*phases: str) -> dict[str, Any] | None:
            listing = (await http.get("/api/v1/incidents", params={"namespace": ns})).json()
            items = listing.get("items", listing) if isinstance(listing, dict) else listing
            for item in items or []:
                view = (await http.get(f"/api/v1/incidents/{item['id']}")).json()
                if (view.get("workflow") or {}).get("phase") in phases:
                    return view
            return None

        view = await eventually(lambda: workflow_in("proposed", "failed", "completed", "awaiting_approval"),
                                timeout=150, interval=1, what="the workflow proposing in Git")
        analysis = view["analysis"] or {}
        assert view["workflow"]["phase"] == "proposed", (
            view["workflow"], analysis.get("action"), analysis.get("rule_id"),
            {k: v for k, v in (analysis.get("facts") or {}).items() if k.startswith(("gitops", "traits", "pods"))},
            [(a["action"], a["status"], a["dry_run"]) for a in view["actions"]], view.get("steps"))
        assert view["analysis"]["action"] == "increase_memory_limits"
        assert not [a for a in view["actions"] if not a["dry_run"]]
        (number,) = peer.changes
        change = peer.changes[number]
        pushed = git_server.show(NAME, change.head, "apps/shop/deployment.yaml")
        limit = yaml.safe_load(pushed)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
        assert limit != "64Mi" and f"memory: {limit}" in pushed and "# sized for the old cache" in pushed
        live = await admin.get("Deployment", "shop", ns)
        assert live["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "64Mi"

        peer.merge(number)
        reconciler.sync_once()  # Argo CD applies main
        done = await eventually(lambda: workflow_in("completed", "failed", "rolled_back", "declined"), timeout=150,
                                interval=1, what="the workflow after the merge")
        assert done["workflow"]["phase"] == "completed", done["workflow"]
        dep = await admin.get("Deployment", "shop", ns)
        assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == limit
        assert rollout_state(dep)[0] is True
        assert not [a for a in done["actions"] if not a["dry_run"]]
