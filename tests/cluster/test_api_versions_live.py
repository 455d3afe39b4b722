"""Version choice against the real 1.20 server of the test control plane: the hand-written 1.20
discovery documents (tests/data/discovery/v1.20.json) agree with what the server lists, the facade
chooses on it what tests/cluster/test_api_versions.py expects for 1.20, and the chosen versions work."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.discovery import group_version_path
from kubernaut.cluster.errors import NotFound
from kubernaut.cluster.kinds import CUSTOM_RESOURCE_KINDS, KINDS
from tests.support.discovery import EXPECTED, discovery

pytestmark = pytest.mark.k8s


def _live(api: ClusterAPI, path: str) -> dict | None:
    try:
        return api.call("GET", path)
    except NotFound:
        return None


def test_the_hand_written_1_20_documents_match_the_real_server(kube_api_client: client.ApiClient) -> None:
    api = ClusterAPI(kube_api_client)
    minor = api.call("GET", "/version")["minor"].rstrip("+")
    if minor != "20":
        pytest.skip(f"the test control plane is 1.{minor}, the documents are those of 1.20")
    docs = discovery("1.20")
    for path, doc in docs.items():
        if path == "/apis":
            continue
        live = _live(api, path)
        assert live is not None, f"{path} is not served by the real 1.20 server"
        served = {r["name"]: r for r in live["resources"]}
        for entry in doc["resources"]:
            real = served.get(entry["name"])
            assert real is not None, f"{path} lists no {entry['name']}"
            assert sorted(real["verbs"]) == sorted(entry["verbs"]), (path, entry["name"])
            assert [real.get(k) for k in ("group", "version", "kind", "namespaced")] == \
                [entry.get(k) for k in ("group", "version", "kind", "namespaced")], (path, entry["name"])
    # What the documents leave out because 1.20 does not serve it, it does not serve.
    for kind, spec in KINDS.items():
        if kind in CUSTOM_RESOURCE_KINDS:  # CRDs a test may have installed (tests/gitops), not the server's own
            continue
        for version in spec.versions:
            path = group_version_path(spec.group, version)
            assert (path in docs) == (_live(api, path) is not None), path


def test_the_facade_chooses_on_the_real_server_what_the_documents_predict(kube_api_client: client.ApiClient) -> None:
    api = ClusterAPI(kube_api_client)
    if api.call("GET", "/version")["minor"].rstrip("+") != "20":
        pytest.skip("the expectations are those of 1.20")
    for (kind, verb, sub), per_minor in EXPECTED.items():
        expected = per_minor["1.20"]
        if expected is None:
            with pytest.raises(NotFound):
                api.resource_blocking(kind, verb, sub)
        else:
            assert api.resource_blocking(kind, verb, sub).api_version == expected, (kind, verb, sub)


async def test_the_chosen_versions_are_accepted(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    """A dry-run eviction with the discovered Eviction version, a CronJob and a PDB created (dry run) and
    listed with theirs, a scale read through deployments/scale."""
    api = ClusterAPI(kube_api_client)
    name = f"p-{uuid.uuid4().hex[:6]}"
    await api.create("Pod", kube_namespace, {"metadata": {"name": name},
                                             "spec": {"containers": [{"name": "main", "image": "registry.local/a:1"}]}})
    await api.evict(name, kube_namespace, dry_run=True)
    assert await api.get_or_none("Pod", name, kube_namespace) is not None  # a dry run evicts nothing
    cron = {"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.local/a:1"}]}}}}}}
    created = await api.create("CronJob", kube_namespace, cron, dry_run=True)
    assert created["apiVersion"] == (await api.resource("CronJob", "create")).api_version
    pdb = {"metadata": {"name": "pdb"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}}
    await api.create("PodDisruptionBudget", kube_namespace, pdb)
    assert [p["metadata"]["name"] for p in await api.list("PodDisruptionBudget", kube_namespace)] == ["pdb"]
    deployment = {"metadata": {"name": "web"}, "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "main", "image": "registry.local/a:1"}]}}}}
    await api.create("Deployment", kube_namespace, deployment)
    scale = await api.get("Deployment", "web", kube_namespace, subresource="scale")
    assert scale["kind"] == "Scale" and scale["spec"].get("replicas", 0) == 0
