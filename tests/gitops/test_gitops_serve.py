"""GitOps end to end on the Serve app (one app for the module, its own database and namespace).

Propose: an OOM on an Argo CD-managed Deployment in production arrives as an AlertManager webhook; the analysis
finds the owner (tracking-id → Application); the policy says propose; the orchestrator opens a PR (real git
daemon, local GitHub REST peer) with the memory limit raised in the manifest's own file, comments kept, and
changes nothing live; the test merges it, the reconciler (Argo CD's part) applies main, and the workflow sees the
sync, verifies the rollout and completes.

Live, reverted: an OOM on a Flux-managed Deployment (the module's policy file says live for Flux targets) is
fixed live; the reconciler (Flux's kustomize-controller part) writes Git's value back before the verification;
the workflow's verify records reverted_by_gitops and the incident is escalated saying to propose it in Git."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml
from kubernetes import client

from kubernaut import orchestration
from kubernaut.cluster.api import ClusterAPI
from kubernaut.execution.kube import Kube
from kubernaut.execution.operations.objects import rollout_state
from tests.gitops.test_workflow_gitops import TOKEN, manifest
from tests.plugins.kube_testenv import MANAGED_LABEL, _server_minor, wait_until
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    SIM_STATE,
    admin_fixture,
    executor_role_fixture,
    pods,
)
from tests.support.forge_peer import ForgePeer
from tests.support.git_server import GitServer
from tests.support.gitops_cluster import Reconciler, create_object
from tests.support.live_app import fresh_database, live_application
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
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["kustomize.toolkit.fluxcd.io"], "resources": ["kustomizations"],
         "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["source.toolkit.fluxcd.io"], "resources": ["gitrepositories"],
         "verbs": ["get", "list", "watch"]}]})
    rbac.create_cluster_role_binding({"metadata": {"name": role}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}, "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kubernaut-executor"}]})
    yield
    rbac.delete_cluster_role_binding(role)
    rbac.delete_cluster_role(role)


def namespace(api: client.ApiClient, environment: str) -> str:
    """A managed namespace of ``environment``, labelled at creation (the processor caches namespace labels)."""
    core = client.CoreV1Api(api)
    name = f"t-gitops-{environment}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={
        MANAGED_LABEL: "true", "kubernaut.ai/environment": environment})))
    # As kube_namespace: pods are refused until the default ServiceAccount (and before 1.24 its token) exists.
    wait_until(lambda: core.read_namespaced_service_account("default", name).secrets
               or _server_minor(api) >= 24, timeout=60, what=f"the default ServiceAccount in {name}")
    return name


@pytest.fixture(scope="module")
def namespaces(kube_api_client: client.ApiClient) -> Iterator[dict[str, str]]:
    """The module's namespaces, shared by its tests as the Serve app is: production (the propose scenario) and
    staging (the live one)."""
    made = {env: namespace(kube_api_client, env) for env in ("production", "staging")}
    yield made
    for name in made.values():
        client.CoreV1Api(kube_api_client).delete_namespace(
            name, body=client.V1DeleteOptions(propagation_policy="Background"))


def flux_live_policy(directory: Path) -> str:
    """The packaged policy with a GitOps rule first: Flux-managed targets are fixed live (the module's second
    scenario); Argo CD's keep the packaged rules (propose in production)."""
    doc = yaml.safe_load((Path(orchestration.__file__).parent / "policy.yaml").read_text())
    doc["gitops"]["rules"].insert(0, {"name": "test-flux-live", "when": {"tool": ["flux"]}, "mode": "live"})
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gitops_app(serve_app: Any, pg_dsn: str, kube_testenv: Any, executor_role: Any, argo_reader: None,
                     gitops_crds: ClusterAPI, git_server: GitServer, namespaces: dict[str, str],
                     tmp_path_factory: pytest.TempPathFactory
                     ) -> AsyncIterator[tuple[str, ForgePeer, Reconciler, str]]:
    ns = namespaces["production"]
    git_server.create(NAME, {"apps/shop/deployment.yaml": manifest(ns), "README.md": "deploy repo\n",
                             "apps/cart/deployment.yaml": cart_manifest(namespaces["staging"])})
    peer = ForgePeer(git_server.bare(NAME), TOKEN, f"org/{NAME}")
    reconciler = Reconciler(gitops_crds, git_server.bare(NAME), "apps/shop")
    dsn = await fresh_database(pg_dsn, "t_gitops")
    try:
        async with live_application(
            serve_app, "gitops", dsn, kube_testenv.executor_kubeconfig,
            execution={"cooldown_s": 0},
            # stabilization_s: the live fix is verified a few seconds after it is made (the revert comes first).
            orchestration={"stabilization_s": 4, "verify_interval_s": 0.5, "verify_timeout_s": 90,
                           "autonomy_min_cases": 0, "autonomy_min_lower_bound": 0, "cooldown_s": 0,
                           "policy_file": flux_live_policy(tmp_path_factory.mktemp("gitops-policy"))},
            gitops={"poll_interval_s": 0.5, "sync_timeout_s": 90, "repositories": [{
                "url": f"https://git.example.com/org/{NAME}.git", "clone_url": git_server.url(NAME),
                "forge": "github", "api_url": peer.url, "project": f"org/{NAME}", "token": TOKEN}]},
            work={"poll_interval_s": 0.5, "lease_s": 10},
        ) as base:
            yield base, peer, reconciler, ns
    finally:
        peer.stop()


def cart_manifest(ns: str) -> str:
    """The Flux-managed Deployment of the live scenario (Kustomization apps → apps/cart of the same repository)."""
    return re.sub(r"\bshop\b", "cart", manifest(ns, argo=False))


async def oom_alert(http: httpx.AsyncClient, admin: Kube, ns: str, app: str) -> None:
    """The running pod of ``app`` is OOMKilled (the simulated kubelet reads the pod's own annotation: the pods of
    a fixed revision, made from the template, run healthy), and AlertManager says so."""
    async def running() -> str | None:
        live = await pods(admin, ns, app)
        return live[0]["metadata"]["name"] if live and (live[0].get("status") or {}).get("podIP") else None

    pod = await eventually(running, timeout=120, what=f"the {app} pod")
    await admin.patch("Pod", pod, ns, {"metadata": {"annotations": {SIM_STATE: "OOMKilled"}}})

    async def oom() -> bool:
        for p in await pods(admin, ns, app):
            for status in (p.get("status") or {}).get("containerStatuses") or []:
                if ((status.get("lastState") or {}).get("terminated") or {}).get("reason") == "OOMKilled":
                    return True
        return False

    await eventually(oom, timeout=120, what=f"an OOMKilled {app} pod")
    from datetime import datetime, timezone
    assert (await http.post("/api/v1/alerts", json=webhook(ns, pod, "firing", datetime.now(timezone.utc))
                            )).status_code == 200


async def workflow_of(http: httpx.AsyncClient, ns: str, name: str, *phases: str) -> dict[str, Any] | None:
    """The incident view of ``name``'s incident whose workflow is in one of ``phases``."""
    listing = (await http.get("/api/v1/incidents", params={"namespace": ns})).json()
    items = listing.get("items", listing) if isinstance(listing, dict) else listing
    for item in items or []:
        if (item.get("target") or {}).get("name") != name:
            continue
        view = (await http.get(f"/api/v1/incidents/{item['id']}")).json()
        if (view.get("workflow") or {}).get("phase") in phases:
            return view
    return None


async def test_oom_on_an_argo_deployment_is_proposed_merged_synced_and_verified(
        gitops_app: tuple[str, ForgePeer, Reconciler, str], admin: Kube, gitops_crds: ClusterAPI,
        git_server: GitServer) -> None:
    base, peer, reconciler, ns = gitops_app
    # ns is production: the policy's default for a GitOps-managed target there is propose (no live change).
    reconciler.sync_once()
    create_object(gitops_crds, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                                "metadata": {"name": "shop", "namespace": ns}, "spec": {
        "source": {"repoURL": f"https://git.example.com/org/{NAME}", "path": "apps/shop", "targetRevision": "main"},
        "destination": {"namespace": ns}, "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}})

    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        await oom_alert(http, admin, ns, "shop")

        def workflow_in(*phases: str) -> Any:
            return workflow_of(http, ns, "shop", *phases)

        view = await eventually(lambda: workflow_in("proposed", "failed", "completed", "awaiting_approval"),
                                timeout=150, interval=1, what="the workflow proposing in Git")
        analysis = view["analysis"] or {}
        assert view["workflow"]["phase"] == "proposed", (
            view["workflow"], analysis.get("action"), analysis.get("rule_id"),
            {k: v for k, v in (analysis.get("facts") or {}).items() if k.startswith(("gitops", "traits", "pods"))},
            [(a["action"], a["status"], a["dry_run"]) for a in view["actions"]], view["workflow"].get("steps"))
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


async def test_a_live_fix_on_a_flux_deployment_that_flux_puts_back_is_escalated_as_reverted_by_gitops(
        gitops_app: tuple[str, ForgePeer, Reconciler, str], namespaces: dict[str, str], admin: Kube,
        gitops_crds: ClusterAPI, git_server: GitServer) -> None:
    base, _, _, _ = gitops_app
    # Staging (no approval for the fix); the module's policy file says live for Flux-managed targets.
    ns = namespaces["staging"]
    flux = Reconciler(gitops_crds, git_server.bare(NAME), "apps/cart", kustomization=("apps", ns))
    flux.sync_once()
    create_object(gitops_crds, {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                                "metadata": {"name": "fleet", "namespace": ns},
                                "spec": {"url": f"https://git.example.com/org/{NAME}", "interval": "1m",
                                         "ref": {"branch": "main"}}})
    create_object(gitops_crds, {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                                "metadata": {"name": "apps", "namespace": ns},
                                "spec": {"path": "./apps/cart", "interval": "5m", "prune": True,
                                         "sourceRef": {"kind": "GitRepository", "name": "fleet"}}})

    def memory(dep: dict[str, Any]) -> str:
        return str(dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])

    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        await oom_alert(http, admin, ns, "cart")

        async def fixed_live() -> str | dict[str, Any] | None:
            live = memory(await admin.get("Deployment", "cart", ns))
            if live != "64Mi":
                return live
            # A workflow that ended (or waits for a human) without the live fix: say why at once.
            return await workflow_of(http, ns, "cart", "completed", "failed", "rolled_back", "awaiting_approval",
                                     "proposed", "review", "denied", "blocked")

        try:
            raised = await eventually(fixed_live, timeout=240, interval=0.2, what="the live fix of cart's memory limit")
        except AssertionError as exc:
            listing = (await http.get("/api/v1/incidents", params={"namespace": ns})).json()["items"]
            raise AssertionError(f"{exc}; incidents: {[(i['id'], i['target'], i['phase']) for i in listing]}") from None
        assert isinstance(raised, str), (raised["workflow"], (raised.get("analysis") or {}).get("action"),
                                         [(a["action"], a["status"], a["dry_run"]) for a in raised["actions"]])
        flux.sync_once()  # Flux's kustomize-controller applies Git again: the live fix is undone
        assert memory(await admin.get("Deployment", "cart", ns)) == "64Mi"

        done = await eventually(lambda: workflow_of(http, ns, "cart", "completed", "failed", "rolled_back"),
                                timeout=150, interval=1, what="the workflow after the revert")
        workflow = done["workflow"]
        assert workflow["phase"] == "failed", workflow
        steps = {step["name"]: step for step in workflow.get("steps") or []}
        assert steps["gitops"]["detail"]["mode"] == "live" and steps["gitops"]["detail"]["gitops"]["tool"] == "flux"
        verify = steps["verify:0"]
        assert verify["status"] == "failed" and verify["detail"].get("reverted_by_gitops") is True, verify
        assert "kustomize-controller" in verify["detail"]["reason"]
        reason = workflow.get("error") or ""
        assert "reverted by the GitOps controller" in reason and "propose it in Git instead" in reason, workflow
        # Escalated, and no inverse of the live fix was run: the controller already put Git's value back.
        assert [a["action"] for a in done["actions"] if not a["dry_run"]] == ["increase_memory_limits"], raised
        assert done["phase"] == "action_failed", done["phase"]
        told = [n for n in done["notifications"] if "propose it in Git instead" in (n.get("body") or "")]
        assert told, [(n["event"], n["title"]) for n in done["notifications"]]  # the on-call is told why
