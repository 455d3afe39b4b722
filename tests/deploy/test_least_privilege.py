"""Least privilege in deploy/ (issue 12): who runs where, under which ServiceAccount, with which secrets.

The rendered RayService is read as KubeRay would: a worker group offers the custom Ray resources of its
``rayStartParams.resources``; a Serve deployment runs only where the resources of its ``ray_actor_options``
are offered (they come from ``deployments.<name>.resources`` of the serve config, through kubernaut.app).
The RBAC part applies the generated roles to the real test control plane and asks SubjectAccessReviews.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, REPO_ROOT, generator, load_docs, pod_templates, ray_container, rayservice
from tests.plugins.kube_testenv import wait_until
from tests.support.polling import eventually

VARIANTS = ("cpu", "llm")
NAMESPACE = "kubernaut"
EXECUTOR_SA = "kubernaut-executor"

# What each group may hold: the table of deploy/README.md ("Who runs where"), checked in both directions.
GROUP_SECRETS = {
    "head": set(),
    "gateway": {"DATABASE_URL", "KUBERNAUT_GATEWAY__TOKENS", "KUBERNAUT_STORAGE__AUDIT__KEYS"},
    # The schema owner's DSN: migrations run in the core group only (deploy/40-postgres.yaml).
    "core": {"DATABASE_URL", "KUBERNAUT_STORAGE__MIGRATION_DSN", "KUBERNAUT_STORAGE__AUDIT__KEYS"},
    "analysis": {"DATABASE_URL", "KUBERNAUT_ANALYSIS__LLM_API_KEY", "KUBERNAUT_STORAGE__AUDIT__KEYS"},
    "executor": {"DATABASE_URL", "KUBERNAUT_STORAGE__AUDIT__KEYS"},
    "notifications": {"DATABASE_URL", "KUBERNAUT_NOTIFICATIONS__URLS"},
    "gpu": {"HF_TOKEN"},
}
GROUP_ACCOUNTS = {"head": "kubernaut-ray-head", "gateway": "kubernaut-gateway", "core": "kubernaut-reader",
                  "analysis": "kubernaut-reader", "executor": EXECUTOR_SA,
                  "notifications": "kubernaut-notifications", "gpu": "kubernaut-llm"}
NO_TOKEN_GROUPS = {"notifications", "gpu"}


def _groups(variant: str) -> dict[str, dict[str, Any]]:
    spec = rayservice(variant)["spec"]["rayClusterConfig"]
    return {"head": spec["headGroupSpec"], **{g["groupName"]: g for g in spec["workerGroupSpecs"]}}


def _offered(group: dict[str, Any]) -> dict[str, float]:
    """The custom resources a group's pods offer: KubeRay passes the value to `ray start --resources=...`
    through a shell, hence the quoted JSON."""
    value = group.get("rayStartParams", {}).get("resources")
    if value is None:
        return {}
    (unquoted,) = shlex.split(value)
    return json.loads(unquoted)


def _kubernaut_args(variant: str) -> dict[str, Any]:
    config = yaml.safe_load(rayservice(variant)["spec"]["serveConfigV2"])
    return next(a for a in config["applications"] if a["name"] == "kubernaut")["args"]


def _built_deployments(args: dict[str, Any]) -> dict[str, Any]:
    """The Serve deployments kubernaut.app:build makes from ``args``, as Serve's builder finalizes them."""
    from ray.serve._private.build_app import build_app

    from kubernaut.app import build

    built = build_app(build(args), name="kubernaut")
    return {d.name: d for d in built.deployments}


def _secret_env(template: dict[str, Any]) -> set[str]:
    return {e["name"] for e in ray_container(template).get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


# -- placement: the executor alone in its group ----------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_executor_deployment_runs_on_the_executor_group_only(variant: str) -> None:
    groups = _groups(variant)
    deployments = _built_deployments(_kubernaut_args(variant))
    # Every Kubernaut deployment asks for exactly one group's resource, and fits only that group.
    where: dict[str, str] = {}
    for name, deployment in deployments.items():
        wanted = deployment.ray_actor_options.get("resources") or {}
        assert wanted, f"{name} asks for no group resource: Ray may place it on any pod, the executor's included"
        fits = [g for g, spec in groups.items() if all(_offered(spec).get(r, 0) >= n for r, n in wanted.items())]
        assert len(fits) == 1, f"{name} fits {fits}"
        where[name] = fits[0]
    assert where["executor"] == "executor"
    assert [d for d, g in where.items() if g == "executor"] == ["executor"]
    # The custom resource on both sides, as the issue names it.
    assert deployments["executor"].ray_actor_options["resources"] == {"kubernaut-executor": 1}
    assert _offered(groups["executor"]) == {"kubernaut-executor": 1}
    assert [g for g, spec in groups.items() if "kubernaut-executor" in _offered(spec)] == ["executor"]
    # No CPU in the executor group and none asked by the executor: nothing that needs a CPU (another replica,
    # a task, the llm app's ingress) lands beside it, and one executor replica per pod.
    assert groups["executor"]["rayStartParams"]["num-cpus"] == "0"
    assert deployments["executor"].ray_actor_options["num_cpus"] == 0
    # The head runs no replica: it offers no group resource and no CPU.
    assert _offered(groups["head"]) == {} and groups["head"]["rayStartParams"]["num-cpus"] == "0"


def test_llm_app_ingress_is_confined_to_the_gpu_group() -> None:
    groups = _groups("llm")
    config = yaml.safe_load(rayservice("llm")["spec"]["serveConfigV2"])
    llm = next(a for a in config["applications"] if a["name"] == "llm")
    wanted = llm["args"]["ingress_deployment_config"]["ray_actor_options"]["resources"]
    assert [g for g, spec in groups.items() if all(_offered(spec).get(r, 0) >= n for r, n in wanted.items())] == [
        "gpu"]


def test_local_serve_config_asks_for_no_custom_resource() -> None:
    """`serve run serve_config.yaml` on a laptop: no node offers the groups' resources, so none is asked."""
    local = yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text())
    args = next(a for a in local["applications"] if a["name"] == "kubernaut")["args"]
    for name, deployment in _built_deployments(args).items():
        assert "resources" not in deployment.ray_actor_options, name
        assert deployment.ray_actor_options["num_cpus"] > 0, name


# -- ServiceAccounts and tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_group_runs_as_its_own_service_account(variant: str) -> None:
    accounts = {g: t["spec"]["serviceAccountName"] for g, t in pod_templates(rayservice(variant))}
    expected = {g: a for g, a in GROUP_ACCOUNTS.items() if variant == "llm" or g != "gpu"}
    assert accounts == expected
    assert [g for g, a in accounts.items() if a == EXECUTOR_SA] == ["executor"], "only the executor group"
    defined = {d["metadata"]["name"]: d for d in load_docs(DEPLOY / "10-rbac.yaml") if d["kind"] == "ServiceAccount"}
    assert set(accounts.values()) <= set(defined), "every group's ServiceAccount is in deploy/10-rbac.yaml"


@pytest.mark.parametrize("variant", VARIANTS)
def test_groups_without_api_access_mount_no_kubernetes_token(variant: str) -> None:
    accounts = {d["metadata"]["name"]: d for d in load_docs(DEPLOY / "10-rbac.yaml") if d["kind"] == "ServiceAccount"}
    for group, template in pod_templates(rayservice(variant)):
        spec = template["spec"]
        if group in NO_TOKEN_GROUPS:
            assert spec["automountServiceAccountToken"] is False, group
            assert accounts[spec["serviceAccountName"]]["automountServiceAccountToken"] is False, group
            volumes = json.dumps(spec.get("volumes", []))
            assert "serviceAccountToken" not in volumes and "secret" not in volumes, f"{group}: a token by hand"
        elif group != "head":  # the head's token goes to the autoscaler sidecar only (test below)
            assert spec.get("automountServiceAccountToken", True) is True, group


@pytest.mark.parametrize("variant", VARIANTS)
def test_head_token_reaches_the_autoscaler_sidecar_only(variant: str) -> None:
    """The head's Ray container (Serve controller, proxy, app builder) gets no Kubernetes token; the
    autoscaler sidecar that KubeRay adds gets the head account's token at the in-cluster path."""
    spec = rayservice(variant)["spec"]["rayClusterConfig"]
    head = spec["headGroupSpec"]["template"]["spec"]
    assert head["automountServiceAccountToken"] is False
    assert "volumeMounts" not in ray_container(spec["headGroupSpec"]["template"])
    (mount,) = spec["autoscalerOptions"]["volumeMounts"]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount" and mount["readOnly"] is True
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    sources = volume["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["path"] == "token"
    assert {"key": "ca.crt", "path": "ca.crt"} in sources[1]["configMap"]["items"]
    assert sources[2]["downwardAPI"]["items"][0]["path"] == "namespace"


def test_llm_group_has_no_token_no_database_and_no_kubernaut_secret() -> None:
    (gpu,) = [t for g, t in pod_templates(rayservice("llm")) if g == "gpu"]
    container = ray_container(gpu)
    names = {e["name"] for e in container["env"]}
    assert "DATABASE_URL" not in names
    assert not [n for n in names if n.startswith("KUBERNAUT_")], names
    assert "envFrom" not in container
    assert gpu["spec"]["automountServiceAccountToken"] is False


# -- secrets per group -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_group_mounts_only_the_secrets_its_deployments_use(variant: str) -> None:
    for group, template in pod_templates(rayservice(variant)):
        container = ray_container(template)
        assert "envFrom" not in container, f"{group}: envFrom would mount whole Secrets"
        assert _secret_env(template) == GROUP_SECRETS[group], group
    # The vLLM engine's own Ray workers and the KubeRay-managed Redis password are outside these pods' env.


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_kubernaut_deployment_builds_its_config_from_its_own_group(variant: str) -> None:
    """Without this, the builder's configuration (with whatever secrets its node has) would be pickled into
    every replica's init args and Serve's checkpoint, and per-group secrets would mean nothing."""
    from kubernaut.config import load_config

    args = _kubernaut_args(variant)
    assert args["deployments"].keys() == load_config({}).deployments.keys()
    for name, settings in args["deployments"].items():
        assert settings.get("config_from_replica_env") is True, name


def test_head_builder_validates_the_args_with_no_secret_at_all() -> None:
    """The head mounts nothing; the app builder that Serve runs there must still succeed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNAUT_") and k != "DATABASE_URL"}
    code = ("import json, sys; from kubernaut.app import build; build(json.loads(sys.argv[1])); print('built')")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(_kubernaut_args("cpu"))], env=env,
                            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert result.returncode == 0 and "built" in result.stdout, result.stderr[-2000:]


def test_replica_config_comes_from_the_replica_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through Serve's own builder (which round-trips init args through pickle): no secret of the builder's
    environment reaches the replica or the serialized init args; the replica reads its own."""
    args = _kubernaut_args("cpu")
    builder_secret = "postgresql://builder:builder-secret-pw@db.example:5432/kubernaut"
    monkeypatch.setenv("DATABASE_URL", builder_secret)
    deployments = _built_deployments(args)
    for name, deployment in deployments.items():
        blob = pickle.dumps(deployment.init_args[0])
        assert b"builder-secret-pw" not in blob, f"{name}: the builder's secret is in the init args"
    monkeypatch.setenv("DATABASE_URL", "postgresql://replica:replica-pw@db.example:5432/kubernaut")
    monkeypatch.setenv("KUBERNAUT_NOTIFICATIONS__URLS", '["json://hooks.example/replica"]')
    config = pickle.loads(pickle.dumps(deployments["notifications"].init_args[0]))
    assert config.storage.dsn.get_secret_value().startswith("postgresql://replica:replica-pw@")
    assert [u.get_secret_value() for u in config.notifications.urls] == ["json://hooks.example/replica"]
    assert config.deployments["notifications"].config_from_replica_env is True


@pytest.mark.ray
def test_replicas_read_their_own_groups_environment_under_real_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real Ray Serve: a replica whose environment differs from the builder's (as a worker group's does,
    here through its runtime_env) sees its own secret with config_from_replica_env, the builder's without."""
    import ray
    from ray import serve

    from kubernaut.app import _ConfigFromReplicaEnv
    from kubernaut.config import load_config

    args = _kubernaut_args("cpu")
    monkeypatch.setenv("DATABASE_URL", "postgresql://builder:builder-pw@db.example:5432/kubernaut")
    replica_env = {"DATABASE_URL": "postgresql://replica:replica-pw@db.example:5432/kubernaut",
                   "KUBERNAUT_NOTIFICATIONS__URLS": '["json://hooks.example/replica"]'}

    @serve.deployment(ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": replica_env}})
    class Probe:
        def __init__(self, config: Any) -> None:
            self.seen = {"dsn": config.storage.dsn.get_secret_value(),
                         "urls": [u.get_secret_value() for u in config.notifications.urls],
                         "cluster": config.cluster_name}

        def __call__(self) -> dict[str, Any]:
            return self.seen

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False)
    try:
        lazy = serve.run(Probe.bind(_ConfigFromReplicaEnv(args)), name="lp-replica-env", route_prefix=None)
        assert lazy.remote().result(timeout_s=120) == {
            "dsn": replica_env["DATABASE_URL"], "urls": ["json://hooks.example/replica"], "cluster": "production"}
        # The contrast: a configuration built in the builder carries the builder's secret into the replica.
        eager = serve.run(Probe.bind(load_config(args)), name="lp-builder-env", route_prefix=None)
        assert eager.remote().result(timeout_s=120)["dsn"].startswith("postgresql://builder:builder-pw@")
    finally:
        for name in ("lp-replica-env", "lp-builder-env"):
            try:
                serve.delete(name)
            except Exception:  # best-effort cleanup of the test's own applications
                pass
        if started:
            serve.shutdown()
            ray.shutdown()


def test_replica_env_without_serve_args_is_refused() -> None:
    """build_app(config) has no args to hand to the replicas: refuse rather than ship the builder's secrets."""
    from kubernaut.app import build_app
    from kubernaut.config import load_config

    config = load_config({"deployments": {"gateway": {"config_from_replica_env": True}}})
    with pytest.raises(ValueError, match=r"deployments\.gateway\.config_from_replica_env"):
        build_app(config)


def test_readme_table_matches_the_manifests() -> None:
    """deploy/README.md's "Who runs where" table names each group's ServiceAccount and secrets as rendered."""
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.split("## Who runs where", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and cells[0].startswith("`") and cells[0] != "group":
            rows[re.findall(r"`([^`]+)`", cells[0])[0]] = (cells[2], cells[4])
    assert set(rows) == set(GROUP_ACCOUNTS)
    for group, (account, secrets) in rows.items():
        assert re.findall(r"`([^`]+)`", account)[0] == GROUP_ACCOUNTS[group], group
        named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", secrets))
        assert named == GROUP_SECRETS[group], group


# -- namespaced executor RBAC --------------------------------------------------------------------------------


def _namespaced_docs(namespaces: list[str]) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(generator().render_rbac(executor_namespaces=namespaces)) if d]


def _pairs(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(r["apiGroups"][0], res, verb) for r in rules for res in r["resources"] for verb in r["verbs"]}


def test_namespaced_mode_renders_a_role_per_namespace_with_the_cluster_roles_namespaced_rules() -> None:
    from kubernaut.execution.catalog import rbac_rules

    docs = _namespaced_docs(["payments", "shop"])
    namespaced, cluster = generator().split_rules(rbac_rules())
    roles = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "Role"}
    assert set(roles) == {"payments", "shop"}
    for ns, role in roles.items():
        assert role["metadata"]["name"] == EXECUTOR_SA
        assert role["rules"] == namespaced, ns
    bindings = {d["metadata"]["namespace"]: d for d in docs if d["kind"] == "RoleBinding"}
    assert set(bindings) == {"payments", "shop"}
    for binding in bindings.values():
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": EXECUTOR_SA}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": EXECUTOR_SA, "namespace": NAMESPACE}]
    # Only the cluster-scoped rights stay cluster-wide, and nothing is lost or added by the split.
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole" and "executor" in d["metadata"]["name"]]
    assert cluster_role["rules"] == cluster
    assert {res for _, res, _ in _pairs(cluster)} == {"namespaces", "nodes", "persistentvolumes", "storageclasses"}
    assert _pairs(namespaced) | _pairs(cluster) == _pairs(rbac_rules())
    assert not _pairs(namespaced) & _pairs(cluster)
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == EXECUTOR_SA]
    # The other accounts are unchanged.
    cluster_docs = [d for d in load_docs(DEPLOY / "10-rbac.yaml") if "executor" not in d["metadata"]["name"]]
    assert cluster_docs == [d for d in docs if "executor" not in d["metadata"]["name"]]


@pytest.mark.parametrize("bad", [[], ["Payments"], ["a", "a"], ["-x"]])
def test_namespaced_mode_refuses_bad_namespace_lists(bad: list[str]) -> None:
    with pytest.raises(ValueError, match="executor-namespaces"):
        generator().render_rbac(executor_namespaces=bad)


def test_namespaced_mode_from_the_command_line() -> None:
    script = str(REPO_ROOT / "scripts" / "gen-rayservice.py")
    out = subprocess.run([sys.executable, script, "--print-rbac", "--executor-namespaces", "payments"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert [d["metadata"]["namespace"] for d in yaml.safe_load_all(out) if d and d["kind"] == "Role"] == ["payments"]
    bad = subprocess.run([sys.executable, script, "--executor-namespaces", "payments"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--print-rbac" in bad.stderr


# -- against the real control plane ------------------------------------------------------------------------


def _retarget(doc: dict[str, Any], prefix: str, namespace: str, namespaces: dict[str, str]) -> dict[str, Any]:
    """Into the test's namespaces: cluster-scoped names prefixed, ServiceAccounts in ``namespace``,
    namespaced objects moved by ``namespaces`` (their manifest namespace → a test namespace)."""
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        meta["name"] = f"{prefix}-{meta['name']}"
    else:
        meta["namespace"] = namespaces.get(meta.get("namespace", NAMESPACE), namespace)
    if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        if doc["roleRef"]["kind"] == "ClusterRole":
            doc["roleRef"]["name"] = f"{prefix}-{doc['roleRef']['name']}"
        for subject in doc["subjects"]:
            subject["namespace"] = namespace
    return doc


class _Applied:
    def __init__(self, api) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(api)
        self.rbac = client.RbacAuthorizationV1Api(api)
        self.authz = client.AuthorizationV1Api(api)
        self.undo: list[Any] = []

    def namespace(self) -> str:
        from kubernetes import client

        name = f"lp-{uuid.uuid4().hex[:8]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        self.undo.append(lambda: self.core.delete_namespace(name))
        return name

    def apply(self, doc: dict[str, Any]) -> None:
        kind, meta = doc["kind"], doc["metadata"]
        if kind == "ClusterRole":
            self.rbac.create_cluster_role(doc)
            self.undo.append(lambda: self.rbac.delete_cluster_role(meta["name"]))
        elif kind == "ClusterRoleBinding":
            self.rbac.create_cluster_role_binding(doc)
            self.undo.append(lambda: self.rbac.delete_cluster_role_binding(meta["name"]))
        elif kind == "Role":
            self.rbac.create_namespaced_role(meta["namespace"], doc)
        elif kind == "RoleBinding":
            self.rbac.create_namespaced_role_binding(meta["namespace"], doc)
        elif kind == "ServiceAccount":
            self.core.create_namespaced_service_account(meta["namespace"], doc)
        else:
            raise AssertionError(f"unexpected {kind} in the RBAC manifests")

    def can(self, account: str, namespace: str, verb: str, resource: str, group: str = "", ns: str = "default",
            subresource: str = "") -> bool:
        from kubernetes import client

        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{namespace}:{account}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, group=group,
                                                            namespace=ns, subresource=subresource)))
        return self.authz.create_subject_access_review(review).status.allowed

    def close(self) -> None:
        for undo in reversed(self.undo):
            try:
                undo()
            except Exception:  # best-effort cleanup of the test's own objects
                pass


@pytest.fixture
def applied(kube_api_client) -> Iterator[_Applied]:
    applied = _Applied(kube_api_client)
    yield applied
    applied.close()


def _apply_all(applied: _Applied, docs: list[dict[str, Any]], namespaces: dict[str, str] | None = None) -> str:
    home = applied.namespace()
    prefix = home
    for doc in docs:
        applied.apply(_retarget(doc, prefix, home, namespaces or {}))
    return home


def test_cluster_wide_rbac_separates_the_accounts(applied: _Applied) -> None:
    """deploy/10-rbac.yaml and the gateway's review role, applied for real: only the executor may patch."""
    home = _apply_all(applied, [*load_docs(DEPLOY / "10-rbac.yaml"), *load_docs(DEPLOY / "11-gateway-auth.yaml")])
    wait_until(lambda: applied.can(EXECUTOR_SA, home, "patch", "deployments", "apps"), timeout=30,
               what="the executor's binding")
    wait_until(lambda: applied.can("kubernaut-reader", home, "list", "pods"), timeout=30, what="the reader's binding")
    assert applied.can(EXECUTOR_SA, home, "patch", "deployments", "apps", ns="payments")
    for account in ("kubernaut-reader", "kubernaut-gateway", "kubernaut-notifications", "kubernaut-llm",
                    "kubernaut-ray-head"):
        assert not applied.can(account, home, "patch", "deployments", "apps"), account
        assert not applied.can(account, home, "delete", "pods"), account
        assert not applied.can(account, home, "get", "secrets"), account
    # Read-only context rights for analysis/context/effectiveness, the Warning-event watch for the processor.
    assert applied.can("kubernaut-reader", home, "get", "deployments", "apps")
    assert applied.can("kubernaut-reader", home, "watch", "events")
    assert applied.can("kubernaut-reader", home, "get", "pods", subresource="log")
    # The auth reviews for the gateway only.
    wait_until(lambda: applied.can("kubernaut-gateway", home, "create", "tokenreviews", "authentication.k8s.io",
                                   ns=""), timeout=30, what="the gateway's review binding")
    for account in ("kubernaut-reader", EXECUTOR_SA, "kubernaut-notifications", "kubernaut-llm"):
        assert not applied.can(account, home, "create", "tokenreviews", "authentication.k8s.io", ns=""), account
        assert not applied.can(account, home, "create", "subjectaccessreviews", "authorization.k8s.io", ns=""), account
    for account in ("kubernaut-notifications", "kubernaut-llm", "kubernaut-gateway"):
        assert not applied.can(account, home, "list", "pods"), account


def test_namespaced_executor_may_act_only_in_the_listed_namespaces(applied: _Applied) -> None:
    listed, other = applied.namespace(), applied.namespace()
    docs = _namespaced_docs(["listed-a"])
    home = _apply_all(applied, docs, {"listed-a": listed})
    wait_until(lambda: applied.can(EXECUTOR_SA, home, "patch", "deployments", "apps", ns=listed), timeout=30,
               what="the executor's RoleBinding")
    assert applied.can(EXECUTOR_SA, home, "delete", "pods", ns=listed)
    assert applied.can(EXECUTOR_SA, home, "create", "pods", ns=listed, subresource="eviction")
    assert not applied.can(EXECUTOR_SA, home, "patch", "deployments", "apps", ns=other)
    assert not applied.can(EXECUTOR_SA, home, "delete", "pods", ns=other)
    assert not applied.can(EXECUTOR_SA, home, "patch", "deployments", "apps", ns="default")
    # Cluster-scoped rights stay (node actions), listed in the ClusterRole.
    assert applied.can(EXECUTOR_SA, home, "patch", "nodes", ns="")
    assert applied.can(EXECUTOR_SA, home, "get", "namespaces", ns="")
    assert not applied.can("kubernaut-reader", home, "patch", "deployments", "apps", ns=listed)


async def test_the_whole_app_runs_with_every_config_built_in_its_replica(serve_app: Any, fresh_dsn: str,
                                                                        app_kubeconfig: str) -> None:
    """kubernaut.app:build with config_from_replica_env on every deployment, as the RayService runs it (less
    the custom resources, which no local node offers): every replica builds its configuration from the args
    and its own environment, the app comes up, and the gateway and the executor answer."""
    import asyncio

    import httpx
    from ray import serve

    from kubernaut.app import build
    from kubernaut.config import load_config

    name = "lp-replica-env-app"
    args = {"cluster_name": name, "storage": {"dsn": fresh_dsn}, "kubernetes": {"kubeconfig": app_kubeconfig},
            "deployments": {d: {"config_from_replica_env": True} for d in load_config({}).deployments}}
    await asyncio.to_thread(serve.run, build(args), name=name, route_prefix=f"/{name}", blocking=False)
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            async def ready() -> bool:
                try:
                    return (await client.get(f"{serve_app.base_url}/{name}/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=180, what=f"{name} ready")
        executor = serve.get_deployment_handle("executor", app_name=name)
        status = await asyncio.wait_for(executor.status.remote(), timeout=30)
        # Its pool reached the database and its Kubernetes client the control plane, both from the args.
        assert status["mode"] == "dry-run" and "budget" in status, status
    finally:
        await asyncio.to_thread(serve.delete, name)
