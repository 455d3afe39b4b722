"""GitOps-aware workflows end to end on the real control plane, PostgreSQL, a real git daemon and a local
GitHub REST peer: an OOM on an Argo-managed Deployment (detected from its tracking-id and Application) is
proposed in Git in production — never changed live — and completes once the PR is merged and the reconciler
(tests/support/gitops_cluster.py, Argo CD's part) has applied it; a closed PR declines the workflow with who
closed it; refused credentials fail it with nothing live; an unknown layout falls back to an approval."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from kubernaut import orchestration
from kubernaut.analysis.facts import observe
from kubernaut.cluster.api import ClusterAPI
from kubernaut.config import load_config
from kubernaut.context.cluster_reader import KubeReader
from kubernaut.context.gather import ContextGatherer
from kubernaut.gitops.service import GitOpsService
from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.engine import WorkflowEngine
from tests.orchestration.test_workflows_live import drive
from tests.support.executor_harness import (  # noqa: F401  (fixtures: imported to be visible here)
    Harness,
    admin_fixture,
    executor_api_fixture,
    executor_role_fixture,
    harness_fixture,
    make_harness_fixture,
    wait_rollout,
)
from tests.support.forge_peer import ForgePeer, GitHubApp
from tests.support.git_https import GitHttps
from tests.support.git_server import GitServer
from tests.support.gitops_cluster import Reconciler, create_object

TOKEN = "forge-token"


def manifest(ns: str, *, argo: bool = True) -> str:
    owner = f"""  annotations:
    argocd.argoproj.io/tracking-id: "{ns}_shop:apps/Deployment:{ns}/shop"
""" if argo else ""
    return f"""\
# Shop frontend, synced by {"Argo CD (Application " + ns + "/shop)" if argo else "Flux (Kustomization apps)"}.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: {ns}
{owner}  labels:
    app: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: shop
  template:
    metadata:
      labels:
        app: shop
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: app
          image: nginx:1.25
          resources:
            limits:
              memory: 64Mi  # sized for the old cache
"""


SETTINGS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: shop-settings
  namespace: {ns}
data:
  mode: normal
"""


class Scene:
    def __init__(self, harness: Harness, api: ClusterAPI, server: GitServer, name: str, *, token: str = TOKEN,
                 path: str = "apps/shop", verify_timeout_s: float = 60, self_heal_pause_s: float = 86400,
                 app: GitHubApp | None = None, app_key_env: str | None = None, flux: bool = False,
                 flux_pause: str = "object", stabilization_s: float = 0, policy_file: str | None = None) -> None:
        self.h, self.api, self.server, self.name = harness, api, server, f"{name}-{uuid.uuid4().hex[:6]}"
        self.ns = harness.namespace or ""
        self.flux = flux
        files = {"apps/shop/deployment.yaml": manifest(self.ns, argo=not flux)}
        if flux:  # a second object of the Kustomization: Flux keeps reconciling it while the fixed one is paused
            files["apps/shop/settings.yaml"] = SETTINGS.format(ns=self.ns)
        server.create(self.name, files)
        # With a GitHub App: the peer takes installation tokens only, and git is served over HTTPS behind them.
        self.peer = ForgePeer(server.bare(self.name), None if app else TOKEN, f"org/{self.name}", app=app)
        self.https = GitHttps(server.base, lambda user, password: user == "x-access-token" and
                              self.peer.accepts(password), server.base / f"{self.name}-tls") if app else None
        self.reconciler = Reconciler(api, server.bare(self.name), "apps/shop", kustomization=("apps", self.ns)) \
            if flux else Reconciler(api, server.bare(self.name), "apps/shop", application=("shop", self.ns))
        credentials: dict[str, Any] = {"token": token} if app is None else {"github_app": {
            "app_id": app.app_id, "private_key_env": app_key_env}}
        self.config = load_config({
            "execution": {"mode": "live"},
            "orchestration": {"stabilization_s": stabilization_s, "verify_interval_s": 0.5,
                              "verify_timeout_s": verify_timeout_s, "policy_file": policy_file,
                              "autonomy_min_cases": 0, "autonomy_min_lower_bound": 0, "cooldown_s": 0},
            "gitops": {"poll_interval_s": 0.2, "sync_timeout_s": 30, "self_heal_pause_s": self_heal_pause_s,
                       "flux_pause": flux_pause, "repositories": [{
                "url": f"https://git.example.com/org/{self.name}.git",
                "clone_url": self.https.url(self.name) if self.https else server.url(self.name),
                "forge": "github", "api_url": self.peer.url, "project": f"org/{self.name}", **credentials}]}})
        assert app is not None or isinstance(self.config.gitops.repositories[0].token, SecretStr)
        self.path = path
        self.engine = WorkflowEngine(harness.db, harness.executor, self.config,
                                     gitops=GitOpsService(self.config.gitops, api))

    async def deploy(self) -> None:
        self.reconciler.sync_once()
        await wait_rollout(self.h.admin, "Deployment", self.ns, "shop")
        if self.flux:
            create_object(self.api, {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                                     "metadata": {"name": "fleet", "namespace": self.ns},
                                     "spec": {"url": f"https://git.example.com/org/{self.name}", "interval": "1m",
                                              "ref": {"branch": "main"}}})
            create_object(self.api, {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                                     "metadata": {"name": "apps", "namespace": self.ns},
                                     "spec": {"path": f"./{self.path}", "interval": "5m", "prune": True,
                                              "sourceRef": {"kind": "GitRepository", "name": "fleet"}}})
            return
        create_object(self.api, {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {
            "name": "shop", "namespace": self.ns}, "spec": {
            "source": {"repoURL": f"https://git.example.com/org/{self.name}", "path": self.path,
                       "targetRevision": "main"},
            "destination": {"namespace": self.ns}, "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}})

    async def incident(self, environment: str = "production", action: str = "increase_memory_limits",
                       parameters: dict[str, Any] | None = None) -> int:
        """The analysis of an OOM on the Deployment, with the context the analysis gathers (owner detected)."""
        target = ResourceRef(kind="Deployment", name="shop", namespace=self.ns)
        ctx = await ContextGatherer(KubeReader(self.api, 5.0), time_budget_s=10).gather(target)
        assert ctx.gitops is not None, ctx.missing
        facts = observe([], ctx)
        incident = await self.h.db.pool.fetchval(
            """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                      environment, priority, severity)
               VALUES ($1, 'Deployment', 'shop', $2, 'kubernetes', ARRAY['KubePodOOMKilled'], $3, 'P2', 'critical')
               RETURNING id""", uuid.uuid4().hex, self.ns, environment)
        analysis = await self.h.db.pool.fetchval(
            """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause, facts)
               VALUES ($1, 'rules', $2, $3, $4, 0.9, 'app OOMKilled at 64Mi', $5) RETURNING id""",
            incident, action, {"container": "app", "new_limit": "128Mi"} if parameters is None else parameters,
            target.model_dump(), facts)
        workflow = await self.engine.start(analysis)
        assert workflow is not None
        return workflow

    async def live_memory(self) -> str:
        dep = await self.h.admin.get("Deployment", "shop", self.ns)
        return dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]

    async def live_actions(self, workflow: int) -> list[Any]:
        return await self.h.db.pool.fetch("SELECT action, status FROM actions WHERE workflow_id = $1 AND NOT dry_run "
                                          "ORDER BY id", workflow)

    async def steps(self, workflow: int) -> dict[str, Any]:
        rows = await self.h.db.pool.fetch("SELECT name, status, detail FROM workflow_steps WHERE workflow_id = $1",
                                          workflow)
        return {r["name"]: r for r in rows}

    async def until_step(self, workflow: int, name: str, timeout: float = 90) -> dict[str, Any]:
        """Advance the workflow like the job worker does until step ``name`` is recorded."""
        import asyncio
        import time

        from kubernaut.storage.jobs import Reschedule
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.engine.advance(workflow)
            except Reschedule:
                pass
            steps = await self.steps(workflow)
            if name in steps:
                return steps
            assert time.monotonic() < deadline, (name, {k: v["status"] for k, v in steps.items()},
                                                 await self.reason(workflow))
            await asyncio.sleep(0.2)

    def self_heal(self) -> bool:
        return self.reconciler.self_heal()

    async def reason(self, workflow: int) -> str:
        return await self.h.db.pool.fetchval("SELECT error FROM workflows WHERE id = $1", workflow) or ""


@pytest.fixture
def scene(harness: Harness, gitops_crds: ClusterAPI, git_server: GitServer, request: pytest.FixtureRequest):
    made: list[Scene] = []

    def make(**kwargs: Any) -> Scene:
        s = Scene(harness, gitops_crds, git_server, request.node.name[5:30].replace("_", "-"), **kwargs)
        made.append(s)
        return s
    yield make
    for s in made:
        s.peer.stop()
        if s.https is not None:
            s.https.stop()


async def test_oom_on_argo_deployment_in_production_is_proposed_merged_synced_and_completed(scene: Any) -> None:
    s = scene()
    await s.deploy()
    wf = await s.incident()
    assert await drive(s.engine, wf, until=("proposed",)) == "proposed"
    steps = await s.steps(wf)
    assert steps["gitops"]["detail"]["mode"] == "propose" and steps["gitops"]["detail"]["gitops"]["app"] == "shop"
    proposed = steps["propose:opened"]["detail"]["proposed"]
    assert proposed["files"] == ["apps/shop/deployment.yaml"]
    # The PR raises the limit in the right file, comments preserved; the cluster is untouched.
    pushed = yaml.safe_load(s.server.show(s.name, proposed["branch"], "apps/shop/deployment.yaml"))
    assert pushed["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "128Mi"
    assert "memory: 128Mi # sized for the old cache" in s.server.show(s.name, proposed["branch"],
                                                                       "apps/shop/deployment.yaml")
    assert await s.live_memory() == "64Mi" and await s.live_actions(wf) == []
    told = await s.h.db.pool.fetchval("SELECT body FROM notifications WHERE event = 'workflow.proposed' AND "
                                      "incident_id = (SELECT incident_id FROM workflows WHERE id = $1)", wf)
    assert told is not None and proposed["pr"]["url"] in told and "Nothing was changed live" in told

    s.peer.merge(proposed["pr"]["number"])
    assert await drive(s.engine, wf, until=("syncing", "completed", "failed"), timeout=30) == "syncing"
    s.reconciler.sync_once()  # Argo CD applies the merged main branch
    assert await drive(s.engine, wf, timeout=60) == "completed", await s.reason(wf)
    assert await s.live_memory() == "128Mi" and await s.live_actions(wf) == []
    steps = await s.steps(wf)
    assert steps["propose"]["status"] == "succeeded" and steps["synced"]["status"] == "succeeded"
    assert steps["propose"]["detail"]["pr"]["merged_by"] == "carol"  # who merged, from the forge (console)
    assert steps["verify:gitops"]["status"] == "succeeded"
    phase = await s.h.db.pool.fetchval("SELECT i.phase FROM incidents i JOIN workflows w ON w.incident_id = i.id "
                                       "WHERE w.id = $1", wf)
    assert phase == "remediated"
    await _assessed_after_the_sync(s, wf)


async def _assessed_after_the_sync(s: Scene, wf: int) -> None:
    """The proposed change is scored by the ASSESS job: its baseline at sync time, scored after stabilization."""
    from datetime import timedelta

    from kubernaut.effectiveness.monitor import Assessor
    from kubernaut.effectiveness.target_reader import TargetReader
    from kubernaut.storage.jobs import Reschedule

    pool = s.h.db.pool
    synced = await pool.fetchrow("SELECT detail, finished_at FROM workflow_steps WHERE workflow_id = $1 AND "
                                 "name = 'synced'", wf)
    action_id = synced["detail"]["proposed_action_id"]
    assert action_id == await pool.fetchval("SELECT action_id FROM workflow_steps WHERE workflow_id = $1 AND "
                                            "name = 'dry_run:0'", wf)
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE kind = 'assess' AND ref_id = $1", action_id) == 1
    config = s.config.model_copy(update={"orchestration": s.config.orchestration.model_copy(
        update={"stabilization_s": 60})})
    at = synced["finished_at"]
    with pytest.raises(Reschedule):  # within the stabilization window: the baseline, then a wait
        await Assessor(pool, config, TargetReader(s.api, 5.0), now=lambda: at + timedelta(seconds=1)).run(action_id)
    await Assessor(pool, config, TargetReader(s.api, 5.0), now=lambda: at + timedelta(seconds=61)).run(action_id)
    row = await pool.fetchrow("SELECT status, verdict, action_at, baseline, health FROM assessments "
                              "WHERE action_id = $1", action_id)
    assert row is not None and row["action_at"] == at and row["status"] == "done", row
    assert row["baseline"] is not None and row["health"] is not None, row


async def test_closed_pr_declines_the_workflow_naming_who_closed_it(scene: Any) -> None:
    s = scene()
    await s.deploy()
    wf = await s.incident()
    assert await drive(s.engine, wf, until=("proposed",)) == "proposed"
    number = (await s.steps(wf))["propose:opened"]["detail"]["proposed"]["pr"]["number"]
    s.peer.close(number, by="alice")
    assert await drive(s.engine, wf, timeout=30) == "declined"
    assert "closed by alice" in await s.reason(wf)
    assert await s.live_memory() == "64Mi" and await s.live_actions(wf) == []


async def test_refused_credentials_fail_clearly_and_nothing_changes_live(scene: Any) -> None:
    s = scene(token="stolen-or-expired")
    await s.deploy()
    wf = await s.incident()
    assert await drive(s.engine, wf, timeout=30) == "failed"
    reason = await s.reason(wf)
    assert "refused the credentials" in reason and "nothing was changed in the cluster" in reason
    assert await s.live_memory() == "64Mi" and await s.live_actions(wf) == [] and not s.peer.changes


async def test_unknown_layout_falls_back_to_an_approval_for_a_live_change(scene: Any) -> None:
    s = scene(path="apps/elsewhere")
    await s.deploy()
    wf = await s.incident()
    assert await drive(s.engine, wf, until=("awaiting_approval",), timeout=30) == "awaiting_approval"
    gitops = (await s.steps(wf))["gitops"]["detail"]
    assert gitops["fallback"] == "approval" and "no manifest" in gitops["fallback_reason"]
    reason = await s.h.db.pool.fetchval("SELECT reason FROM approvals WHERE workflow_id = $1", wf)
    assert "cannot be made in Git" in reason
    assert await s.live_memory() == "64Mi" and await s.live_actions(wf) == []


async def test_live_change_undone_by_the_controller_is_scored_reverted_by_gitops(scene: Any) -> None:
    from datetime import datetime, timezone

    from kubernaut.effectiveness import scoring
    from kubernaut.effectiveness.models import Component
    from kubernaut.effectiveness.monitor import _drift
    from kubernaut.effectiveness.target_reader import TargetReader

    s = scene()
    await s.deploy()
    target = ResourceRef(kind="Deployment", name="shop", namespace=s.ns)
    result = await s.h.run("increase_memory_limits", target, {"container": "app", "new_limit": "128Mi"})
    assert result.status == "succeeded", result.error
    reader = TargetReader(s.api, 5.0)
    after_action = await reader.read(target)
    baseline = {"spec_hash": after_action.spec_hash, "generation": after_action.generation, "late": False,
                "taken_at": datetime.now(timezone.utc).isoformat()}
    assert await s.live_memory() == "128Mi"
    s.reconciler.sync_once()  # self-heal: Git says 64Mi
    assert await s.live_memory() == "64Mi"
    drift = _drift(await reader.read(target), baseline, trusted=True)
    assert drift.detail["reverted_by"] == Reconciler.MANAGER, drift
    _, verdict, _ = scoring.combine({"drift": drift, "health": Component(name="health", value=1.0, reason="ok")},
                                    {"health": 1.0}, 0.8, 0.4)
    assert verdict == "reverted_by_gitops"


async def test_flux_kustomization_owner_is_read_from_the_cluster(scene: Any) -> None:
    s = scene()
    ns = s.ns
    create_object(s.api, {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                          "metadata": {"name": "fleet", "namespace": ns},
                          "spec": {"url": "ssh://git@git.example.com/org/fleet", "interval": "1m",
                                   "ref": {"branch": "release"}}})
    create_object(s.api, {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                          "metadata": {"name": "apps", "namespace": ns},
                          "spec": {"path": "./clusters/prod", "interval": "5m", "prune": True,
                                   "sourceRef": {"kind": "GitRepository", "name": "fleet"}}})
    await s.h.admin.create("Deployment", ns, {"metadata": {"name": "cart", "labels": {
        "kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": ns}}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "cart"}}, "template": {
            "metadata": {"labels": {"app": "cart"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}}})
    ctx = await ContextGatherer(KubeReader(s.api, 5.0), time_budget_s=10).gather(
        ResourceRef(kind="Deployment", name="cart", namespace=ns))
    assert ctx.gitops is not None and ctx.gitops.tool == "flux" and ctx.traits.gitops_managed
    assert (ctx.gitops.repo, ctx.gitops.path, ctx.gitops.revision) == ("ssh://git@git.example.com/org/fleet",
                                                                      "clusters/prod", "release")
    assert ctx.gitops.self_heal is True and ctx.gitops.unresolved is None


async def test_live_and_propose_pauses_self_heal_until_the_pr_is_merged_then_resumes_it(scene: Any) -> None:
    s = scene()
    await s.deploy()
    wf = await s.incident(environment="staging")
    steps = await s.until_step(wf, "verify:0")
    assert steps["gitops"]["detail"]["mode"] == "live-and-propose"
    assert steps["gitops:pause"]["status"] == "succeeded" and steps["verify:0"]["status"] == "succeeded"
    number = steps["propose:opened"]["detail"]["proposed"]["pr"]["number"]
    # The Application no longer self-heals: the controller leaves the live fix alone while the PR is open.
    assert s.self_heal() is False
    assert s.reconciler.sync_once() == 0 and await s.live_memory() == "128Mi"
    # The workflow follows the PR: it stays proposed, self-heal paused, until the PR is merged.
    assert await drive(s.engine, wf, until=("proposed",), timeout=10) == "proposed"
    assert s.peer.changes[number].state == "open" and "gitops:resume" not in await s.steps(wf)
    assert s.self_heal() is False

    s.peer.merge(number)
    # Merged, and the live values already match Git: still paused until Argo CD reports the merge commit synced.
    assert await drive(s.engine, wf, until=("verifying", "completed", "failed"), timeout=30) == "verifying"
    assert s.self_heal() is False and "gitops:resume" not in await s.steps(wf)
    s.reconciler.sync_once()  # a new commit on main: synced even with self-heal paused, as Argo CD does
    assert await drive(s.engine, wf, timeout=60) == "completed", await s.reason(wf)
    steps = await s.steps(wf)
    assert steps["gitops:resume"]["status"] == "succeeded" and steps["synced"]["status"] == "succeeded"
    assert steps["verify:gitops"]["status"] == "succeeded"
    assert s.self_heal() is True
    s.reconciler.sync_once()  # self-heal on again: Git now says 128Mi, so nothing is reverted
    assert await s.live_memory() == "128Mi"
    assert [r["action"] for r in await s.live_actions(wf)] == [
        "pause_gitops_self_heal", "increase_memory_limits", "resume_gitops_self_heal"]


async def test_live_and_propose_resumes_self_heal_after_the_pause_timeout_and_follows_the_pr(scene: Any) -> None:
    s = scene(self_heal_pause_s=1)
    await s.deploy()
    wf = await s.incident(environment="staging")
    steps = await s.until_step(wf, "gitops:resume", timeout=60)
    assert steps["gitops:resume"]["status"] == "succeeded", steps["gitops:resume"]["detail"]
    assert s.self_heal() is True
    s.reconciler.sync_once()  # the controller heals again: the PR is not merged, Git still says 64Mi
    assert await s.live_memory() == "64Mi"
    number = steps["propose:opened"]["detail"]["proposed"]["pr"]["number"]
    s.peer.close(number, by="bob")
    assert await drive(s.engine, wf, timeout=30) == "declined"
    assert "closed by bob" in await s.reason(wf)


async def test_rollback_deployment_proposes_the_images_of_the_revision_rolled_back_to(scene: Any) -> None:
    s = scene()
    await s.deploy()
    # A bad image reached Git and was synced: revision 2 of the Deployment.
    s.server.commit_on(s.name, "main", "apps/shop/deployment.yaml",
                       manifest(s.ns).replace("image: nginx:1.25", "image: nginx:1.26-bad"), "bump shop")
    s.reconciler.sync_once()
    await wait_rollout(s.h.admin, "Deployment", s.ns, "shop")
    wf = await s.incident(action="rollback_deployment", parameters={})
    assert await drive(s.engine, wf, until=("proposed", "failed", "awaiting_approval"), timeout=60) == "proposed", \
        await s.reason(wf)
    steps = await s.steps(wf)
    request = steps["propose:opened"]["detail"]["request"]
    assert [(c["field"], c["value"]) for c in request["changes"]] == [("containers.app.image", "nginx:1.25")]
    proposed = steps["propose:opened"]["detail"]["proposed"]
    pushed = s.server.show(s.name, proposed["branch"], "apps/shop/deployment.yaml")
    assert "image: nginx:1.25" in pushed and "nginx:1.26-bad" not in pushed
    assert "# sized for the old cache" in pushed
    dep = await s.h.admin.get("Deployment", "shop", s.ns)
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26-bad"  # nothing live
    assert await s.live_actions(wf) == []


async def test_a_proposed_change_that_does_not_roll_out_is_undone_by_a_revert_pr(scene: Any) -> None:
    s = scene(verify_timeout_s=1)
    await s.deploy()
    # Someone paused the rollout: the synced template never rolls out, so the verification fails.
    await s.h.admin.patch("Deployment", "shop", s.ns, {"spec": {"paused": True}})
    wf = await s.incident()
    assert await drive(s.engine, wf, until=("proposed",)) == "proposed"
    number = (await s.steps(wf))["propose:opened"]["detail"]["proposed"]["pr"]["number"]
    s.peer.merge(number)
    assert await drive(s.engine, wf, until=("syncing",), timeout=30) == "syncing"
    s.reconciler.sync_once()
    assert await drive(s.engine, wf, timeout=60) == "rolled_back", await s.reason(wf)
    steps = await s.steps(wf)
    revert = steps["rollback:gitops"]["detail"]["pr"]
    assert revert["number"] != number and s.peer.changes[revert["number"]].state == "open"
    assert s.server.show(s.name, revert["head"], "apps/shop/deployment.yaml") == manifest(s.ns)
    assert "revert PR" in await s.reason(wf) and await s.live_actions(wf) == []


@pytest.mark.parametrize("forged", [False, True], ids=["app-key", "forged-key"])
async def test_github_app_credentials_propose_with_an_installation_token_or_fail_closed(
        scene: Any, monkeypatch: pytest.MonkeyPatch, forged: bool) -> None:
    """The App's JWT is exchanged for an installation token, used for the PR calls and for git over HTTPS
    (x-access-token); a key GitHub does not know gets no token: the workflow fails naming it, nothing pushed,
    nothing live."""
    from tests.gitops.test_github_app import rsa_pair

    private, public = rsa_pair()
    monkeypatch.setenv("KUBERNAUT_TEST_GITHUB_APP_KEY", rsa_pair()[0] if forged else private)
    s = scene(app=GitHubApp(app_id="31337", public_key=public), app_key_env="KUBERNAUT_TEST_GITHUB_APP_KEY")
    monkeypatch.setenv("GIT_SSL_CAINFO", str(s.https.ca_file))  # git trusts the test server's certificate
    await s.deploy()
    wf = await s.incident()
    if forged:
        assert await drive(s.engine, wf, timeout=30) == "failed"
        reason = await s.reason(wf)
        assert "GitHub App 31337" in reason and "installation token was refused" in reason, reason
        assert "nothing was changed in the cluster" in reason
        assert s.peer.jwt_refusals and not s.peer.installation_tokens and not s.peer.changes
        assert s.https.attempts == []  # never an anonymous (or any) push
        assert await s.live_memory() == "64Mi" and await s.live_actions(wf) == []
        return
    assert await drive(s.engine, wf, until=("proposed", "failed"), timeout=60) == "proposed", await s.reason(wf)
    proposed = (await s.steps(wf))["propose:opened"]["detail"]["proposed"]
    # The PR exists: the peer took an installation token for it (it has no static token); the push went over
    # HTTPS as x-access-token with such a token (the server refuses anything else).
    assert proposed["pr"]["number"] in s.peer.changes and len(s.peer.installation_tokens) == 1
    assert ("x-access-token", "git-receive-pack", True) in s.https.attempts
    assert all(ok for _, _, ok in s.https.attempts)
    assert "memory: 128Mi # sized" in s.server.show(s.name, proposed["branch"], "apps/shop/deployment.yaml")
    assert await s.live_memory() == "64Mi" and await s.live_actions(wf) == []


@pytest.mark.parametrize("flux_pause", ["object", "kustomization"])
async def test_flux_live_and_propose_pauses_only_the_fixed_object_or_the_whole_kustomization(
        scene: Any, flux_pause: str) -> None:
    """Flux's per-object kustomize.toolkit.fluxcd.io/reconcile=disabled (the default): the fixed Deployment is left
    alone while the Kustomization keeps reconciling its other objects; gitops.flux_pause kustomization suspends
    it all. Either way the pause is dry-run first (its exact diff recorded), and undone once the PR is merged."""
    s = scene(flux=True, flux_pause=flux_pause)
    await s.deploy()
    wf = await s.incident(environment="staging")
    steps = await s.until_step(wf, "verify:0")
    assert steps["gitops"]["detail"]["mode"] == "live-and-propose" and steps["gitops:pause"]["status"] == "succeeded"
    assert steps["gitops"]["detail"]["gitops"]["tool"] == "flux"
    dry, pause = await s.h.db.pool.fetch("SELECT target, parameters, diff, dry_run FROM actions WHERE workflow_id = $1 "
                                         "AND action = 'pause_gitops_self_heal' ORDER BY id", wf)
    # The dry-run is recorded on the workflow (what a reviewer sees) and is exactly what was then done.
    dry_diff = steps["dry_run:gitops:pause"]["detail"]["diff"] or ""
    assert dry["dry_run"] and not pause["dry_run"] and dry["diff"] == dry_diff == pause["diff"]
    number = steps["propose:opened"]["detail"]["proposed"]["pr"]["number"]
    if flux_pause == "object":
        assert (pause["target"]["kind"], pause["target"]["name"], pause["parameters"]) == (
            "Deployment", "shop", {"scope": "object"})
        assert "+    kustomize.toolkit.fluxcd.io/reconcile: disabled" in dry_diff, dry_diff
        assert s.self_heal() is True  # the Kustomization itself is not suspended
        # Flux skips the fixed object and goes on with the rest: drift on the ConfigMap is reverted.
        await s.h.admin.patch("ConfigMap", "shop-settings", s.ns, {"data": {"mode": "drifted"}})
        assert s.reconciler.sync_once() == 1 and s.reconciler.skipped == ["Deployment/shop"]
        assert (await s.h.admin.get("ConfigMap", "shop-settings", s.ns))["data"]["mode"] == "normal"
    else:
        assert (pause["target"]["kind"], pause["target"]["name"]) == ("Kustomization", "apps")
        assert "+  suspend: true" in dry_diff, dry_diff
        assert s.self_heal() is False and s.reconciler.sync_once() == 0
    assert await s.live_memory() == "128Mi"  # the live fix stays

    s.peer.merge(number)
    assert await drive(s.engine, wf, timeout=60) == "completed", await s.reason(wf)
    steps = await s.steps(wf)
    assert steps["gitops:resume"]["status"] == "succeeded" and steps["verify:gitops"]["status"] == "succeeded"
    dep = await s.h.admin.get("Deployment", "shop", s.ns)
    assert "kustomize.toolkit.fluxcd.io/reconcile" not in (dep["metadata"].get("annotations") or {})
    assert s.self_heal() is True
    assert s.reconciler.sync_once() == 2 and s.reconciler.skipped == []  # Flux owns both again; Git says 128Mi
    assert await s.live_memory() == "128Mi"
    assert [r["action"] for r in await s.live_actions(wf)] == [
        "pause_gitops_self_heal", "increase_memory_limits", "resume_gitops_self_heal"]


def live_policy(directory: Path) -> str:
    """The packaged policy with one GitOps rule first: live for every GitOps-managed target."""
    doc = yaml.safe_load((Path(orchestration.__file__).parent / "policy.yaml").read_text())
    doc["gitops"]["rules"].insert(0, {"name": "test-live", "when": {}, "mode": "live"})
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


async def test_a_live_fix_the_controller_puts_back_is_reverted_by_gitops_not_rolled_back(
        scene: Any, tmp_path: Path) -> None:
    """Live mode on an Argo CD target: the controller's self-heal writes Git's value back before the verification;
    the verify step records reverted_by_gitops (the controller named), the workflow ends failed saying the fix
    belongs in Git, and no inverse is run (the controller already undid it)."""
    s = scene(policy_file=live_policy(tmp_path), stabilization_s=2)
    await s.deploy()
    wf = await s.incident(environment="staging")
    await s.until_step(wf, "execute:0")
    assert await s.live_memory() == "128Mi"
    s.reconciler.sync_once()  # Argo CD's self-heal: Git says 64Mi
    assert await s.live_memory() == "64Mi"
    assert await drive(s.engine, wf, timeout=60) == "failed", await s.reason(wf)
    steps = await s.steps(wf)
    assert steps["gitops"]["detail"]["mode"] == "live"
    verify = steps["verify:0"]
    assert verify["status"] == "failed" and verify["detail"]["reverted_by_gitops"] is True
    assert Reconciler.MANAGER in verify["detail"]["reason"]
    reason = await s.reason(wf)
    assert "reverted by the GitOps controller" in reason and "propose it in Git instead" in reason
    assert [r["action"] for r in await s.live_actions(wf)] == ["increase_memory_limits"]  # no inverse
    assert await s.live_memory() == "64Mi"
