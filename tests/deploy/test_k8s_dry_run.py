"""Server-side dry-run of deploy/'s core manifests against the real test API server (scripts/testenv.sh).

Like ``kubectl apply --dry-run=server``: the API server decodes, defaults, validates and admits each object
without persisting it. Kubernetes 1.20 silently prunes unknown fields instead of rejecting them, so every
field we sent must also be in the object it returns. The Ray pod templates inside the RayService are
dry-run as Pods (the KubeRay CRDs cannot be installed on 1.20; they are checked against their schema in
test_kuberay.py). RBAC is checked for real: the executor's ServiceAccount gets exactly the catalog's rights.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.manifests import DEPLOY, load_docs, pod_templates, rayservice
from tests.plugins.kube_testenv import wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.integration]

CORE_FILES = [*sorted(DEPLOY.glob("*.yaml")), DEPLOY / "examples" / "secrets.yaml",
              DEPLOY / "monitoring" / "grafana-dashboard.yaml"]
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
CRD_KINDS = {"RayService", "RayCluster", "PodMonitor", "PrometheusRule", "AlertmanagerConfig", "Cluster"}


def _core_objects() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in CORE_FILES:
        for doc in load_docs(path):
            if doc["kind"] not in CRD_KINDS:
                out.append((f"{path.relative_to(DEPLOY)}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


@pytest.fixture(scope="module")
def dyn(kube_api_client):
    from kubernetes import dynamic

    return dynamic.DynamicClient(kube_api_client)


def _make_namespace(kube_api_client, with_accounts: bool) -> str:
    from kubernetes import client

    core = client.CoreV1Api(kube_api_client)
    name = f"kd-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_until(lambda: core.read_namespaced_service_account("default", name), timeout=30,
               what=f"default ServiceAccount in {name}")
    if with_accounts:
        for doc in load_docs(DEPLOY / "10-rbac.yaml"):
            if doc["kind"] == "ServiceAccount":
                core.create_namespaced_service_account(name, _retarget(doc, name))
    return name


@pytest.fixture(scope="module")
def namespace(kube_api_client) -> Iterator[str]:
    """An empty namespace: the manifests are dry-run created into it."""
    from kubernetes import client

    name = _make_namespace(kube_api_client, with_accounts=False)
    yield name
    client.CoreV1Api(kube_api_client).delete_namespace(name)


@pytest.fixture(scope="module")
def accounts_namespace(kube_api_client) -> Iterator[str]:
    """A namespace where the Ray pods' ServiceAccounts really exist (a Pod needs its account to exist)."""
    from kubernetes import client

    name = _make_namespace(kube_api_client, with_accounts=True)
    yield name
    client.CoreV1Api(kube_api_client).delete_namespace(name)


def _retarget(doc: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Into the test namespace; cluster-scoped names prefixed so parallel runs never collide."""
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    if doc["kind"] in CLUSTER_SCOPED:
        meta["name"] = f"{namespace}-{meta['name']}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{namespace}-{doc['roleRef']['name']}"
            for subject in doc["subjects"]:
                subject["namespace"] = namespace
    else:
        meta["namespace"] = namespace
    return doc


def _resource(dyn, api_version: str, kind: str):
    """The API resource for apiVersion/kind, or the version of the same group the server offers
    (the 1.20 test server lacks e.g. policy/v1; real clusters are newer)."""
    from kubernetes.dynamic.exceptions import ResourceNotFoundError

    try:
        return dyn.resources.get(api_version=api_version, kind=kind), api_version
    except ResourceNotFoundError:
        group = api_version.rpartition("/")[0]
        candidates = [r for r in dyn.resources.search(kind=kind, group=group) if r.namespaced is not None]
        assert candidates, f"the server offers no {kind} in group {group!r}"
        chosen = candidates[0]
        return chosen, chosen.group_version


def _dry_run(dyn, doc: dict[str, Any]) -> dict[str, Any]:
    resource, version = _resource(dyn, doc["apiVersion"], doc["kind"])
    body = {**doc, "apiVersion": version}
    kwargs = {"namespace": doc["metadata"]["namespace"]} if resource.namespaced else {}
    return resource.create(body=body, dry_run="All", **kwargs).to_dict()


def _pruned(sent: Any, returned: Any, path: str = "") -> list[str]:
    """Fields we sent that the server dropped (unknown to it: a typo or a newer field)."""
    if isinstance(sent, dict):
        if not isinstance(returned, dict):
            return [path or "/"]
        missing = []
        for key, value in sent.items():
            if key == "stringData" and path == "":
                continue  # a Secret's stringData comes back as data
            if key not in returned:
                missing.append(f"{path}/{key}")
            else:
                missing += _pruned(value, returned[key], f"{path}/{key}")
        return missing
    if isinstance(sent, list) and isinstance(returned, list):
        return [m for i, (a, b) in enumerate(zip(sent, returned, strict=False)) for m in _pruned(a, b, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize(("where", "doc"), _core_objects(), ids=[w for w, _ in _core_objects()])
def test_core_manifest_passes_server_side_dry_run(dyn, namespace: str, where: str, doc: dict[str, Any]) -> None:
    sent = _retarget(doc, namespace)
    returned = _dry_run(dyn, sent)
    assert returned["metadata"]["name"] == sent["metadata"]["name"]
    assert _pruned(sent, returned) == [], f"{where}: fields unknown to the API server"


def _ray_pods(namespace: str) -> list[tuple[str, dict[str, Any]]]:
    pods = []
    for variant in ("cpu", "llm"):
        for group, template in pod_templates(rayservice(variant)):
            if variant == "llm" and group != "gpu":
                continue  # the other groups are the cpu variant's
            pods.append((f"{variant}-{group}", {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"ray-{variant}-{group}", "namespace": namespace,
                             "labels": template["metadata"]["labels"]},
                "spec": copy.deepcopy(template["spec"]),
            }))
    return pods


def test_ray_pod_templates_pass_server_side_dry_run_as_pods(dyn, accounts_namespace: str) -> None:
    pods = _ray_pods(accounts_namespace)
    # One group per ServiceAccount since issue 12 (was head, cpu, gpu): each pod needs its account to exist.
    assert {name for name, _ in pods} == {"cpu-head", "cpu-gateway", "cpu-core", "cpu-analysis", "cpu-executor",
                                          "cpu-notifications", "llm-gpu"}
    for name, pod in pods:
        returned = _dry_run(dyn, pod)
        assert _pruned(pod, returned) == [], f"{name}: fields unknown to the API server"
        assert returned["spec"]["serviceAccountName"] == pod["spec"]["serviceAccountName"]


def test_dry_run_and_prune_check_catch_broken_manifests(dyn, namespace: str) -> None:
    """The checks have teeth: invalid values are rejected, a misspelled field is reported."""
    from kubernetes.dynamic.exceptions import BadRequestError, UnprocessibleEntityError

    (statefulset,) = [d for d in load_docs(DEPLOY / "30-redis.yaml") if d["kind"] == "StatefulSet"]
    broken = _retarget(statefulset, namespace)
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "lots"
    with pytest.raises(BadRequestError, match="quantities must match"):
        _dry_run(dyn, broken)
    broken = _retarget(statefulset, namespace)
    broken["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = "something-else"
    with pytest.raises(UnprocessibleEntityError, match="selector"):
        _dry_run(dyn, broken)
    (_, pod), *_ = _ray_pods(namespace)
    pod["spec"]["serviceAccountName"] = "default"
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = 70000
    with pytest.raises(UnprocessibleEntityError, match="containerPort"):
        _dry_run(dyn, pod)
    typo = _retarget(statefulset, namespace)
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"exec": {"command": ["true"]}}
    assert _pruned(typo, _dry_run(dyn, typo)) == ["/spec/template/spec/containers[0]/readinesProbe"]


@pytest.fixture(scope="module")
def executor_rbac(kube_api_client, accounts_namespace: str) -> Iterator[str]:
    """The executor's ClusterRoles and bindings, created for real (renamed), bound in the test namespace."""
    from kubernetes import client

    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    created = []
    for doc in load_docs(DEPLOY / "10-rbac.yaml"):
        if doc["kind"] == "ClusterRole":
            body = _retarget(doc, accounts_namespace)
            rbac.create_cluster_role(body)
            created.append(("role", body["metadata"]["name"]))
        elif doc["kind"] == "ClusterRoleBinding":
            body = _retarget(doc, accounts_namespace)
            rbac.create_cluster_role_binding(body)
            created.append(("binding", body["metadata"]["name"]))
    yield f"system:serviceaccount:{accounts_namespace}:kubernaut-executor"
    for kind, name in reversed(created):
        (rbac.delete_cluster_role_binding if kind == "binding" else rbac.delete_cluster_role)(name)


def _allowed(kube_api_client, user: str, verb: str, resource: str, group: str = "", subresource: str = "",
             namespace: str = "default") -> bool:
    from kubernetes import client

    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=["system:serviceaccounts"],
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, group=group,
                                                        subresource=subresource, namespace=namespace)))
    return client.AuthorizationV1Api(kube_api_client).create_subject_access_review(review).status.allowed


def test_executor_service_account_has_exactly_the_catalogs_rights(kube_api_client, executor_rbac: str) -> None:
    from kubernaut.execution.catalog import rbac_rules

    def allowed(*args: str, **kwargs: str) -> bool:
        return _allowed(kube_api_client, executor_rbac, *args, **kwargs)

    # RBAC propagates to the authorizer's cache asynchronously.
    wait_until(lambda: allowed("patch", "deployments", "apps"), timeout=30, what="the executor's binding")
    for rule in rbac_rules():
        for resource in rule["resources"]:
            name, _, sub = resource.partition("/")
            for verb in rule["verbs"]:
                assert allowed(verb, name, rule["apiGroups"][0], subresource=sub), f"{verb} {resource}"
    assert allowed("get", "namespaces")  # environment classification, managed-namespace label
    for verb, resource, group in [("get", "secrets", ""), ("list", "secrets", ""), ("delete", "deployments", "apps"),
                                  ("create", "pods", ""), ("create", "clusterrolebindings",
                                                           "rbac.authorization.k8s.io"),
                                  ("patch", "rayservices", "ray.io"), ("delete", "namespaces", "")]:
        assert not allowed(verb, resource, group), f"the executor must not {verb} {resource}"


def test_head_service_account_has_no_rights(kube_api_client, executor_rbac: str, accounts_namespace: str) -> None:
    head = f"system:serviceaccount:{accounts_namespace}:kubernaut-ray-head"
    assert not _allowed(kube_api_client, head, "get", "pods")
    assert not _allowed(kube_api_client, head, "patch", "deployments", "apps")


def test_every_core_file_was_checked() -> None:
    """The list above follows deploy/: a new top-level manifest is dry-run without editing this test."""
    names = {Path(w.split(":")[0]).name for w, _ in _core_objects()}
    assert {p.name for p in DEPLOY.glob("*.yaml") if p.name != "50-rayservice.yaml"} <= names
