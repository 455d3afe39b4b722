"""Which API version each call of the cluster facade uses, chosen from discovery documents of several
Kubernetes minors (tests/data/discovery, see its README): the version whose discovery entry lists the
resource (or subresource) with the verb of the call. The real 1.20 server is checked in
tests/cluster/test_api_versions_live.py.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.discovery import eviction_version_from
from kubernaut.cluster.errors import ApiError, NotFound
from kubernaut.execution.kube import Kube, KubeError
from tests.support.discovery import EXPECTED, MINORS, discovery

STD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class DiscoveryAPI(ClusterAPI):
    """A ClusterAPI whose server is a set of discovery documents; records every request."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no ApiClient: _send is replaced
        self.docs = docs
        self.requests: list[tuple[str, str, Any]] = []

    def _send(self, method: str, path: str, query: Any, body: Any, content_type: str, accept: str,
              timeout: Any, stream: bool = False) -> Any:
        self.requests.append((method, path, body))
        if method == "GET" and path.endswith("/log"):
            return b"a log line\n"
        if method == "GET" and (path == "/apis" or path.startswith(("/api/v1", "/apis/"))) and path.count("/") <= 3:
            if path not in self.docs:
                raise KubeError(404, "NotFound", "the server could not find the requested resource", method, path)
            return json.dumps(copy.deepcopy(self.docs[path])).encode()
        return b'{"kind": "Status", "status": "Success", "items": []}'


def _entry(docs: dict[str, dict[str, Any]], path: str, name: str) -> dict[str, Any]:
    return next(r for r in docs[path]["resources"] if r["name"] == name)


@pytest.mark.parametrize(("minor", "eviction", "pdb"), [
    ("1.20", "policy/v1beta1", "policy/v1beta1"),
    # The case the policy group alone gets wrong: v1 PDBs are served, v1 Evictions are not accepted yet.
    ("1.21", "policy/v1beta1", "policy/v1"),
    ("1.22", "policy/v1", "policy/v1"),
    ("1.25", "policy/v1", "policy/v1"),
    ("1.29", "policy/v1", "policy/v1"),
])
async def test_eviction_and_pdb_versions_per_minor(minor: str, eviction: str, pdb: str) -> None:
    kube = DiscoveryAPI(discovery(minor))
    assert await kube.eviction_version() == eviction
    assert (await kube.resource("PodDisruptionBudget")).api_version == pdb
    await kube.evict("web-1", "shop", uid="u-1", dry_run=True)
    method, path, body = kube.requests[-1]
    assert (method, path) == ("POST", "/api/v1/namespaces/shop/pods/web-1/eviction")
    assert body["apiVersion"] == eviction and body["kind"] == "Eviction"
    assert body["deleteOptions"] == {"preconditions": {"uid": "u-1"}, "dryRun": ["All"]}


# (kind, verb, subresource) → the apiVersion of the request per minor (None: the server offers no such call).


@pytest.mark.parametrize("minor", MINORS)
def test_each_call_uses_the_version_whose_entry_offers_its_verb(minor: str) -> None:
    api = DiscoveryAPI(discovery(minor))
    for (kind, verb, sub), per_minor in EXPECTED.items():
        expected = per_minor[minor]
        if expected is None:
            with pytest.raises(NotFound, match=f"offers {verb} on "):
                api.resource_blocking(kind, verb, sub)
        else:
            assert api.resource_blocking(kind, verb, sub).api_version == expected, (kind, verb, sub)


@pytest.mark.parametrize("missing", ["get", "list", "patch", "create", "delete"])
async def test_every_facade_call_asks_discovery_for_its_own_verb(missing: str) -> None:
    """1.21's policy/v1 PodDisruptionBudgets without one verb: that verb's call goes to policy/v1beta1,
    the others stay on v1 (a facade that chose by the resource alone would send every call to v1)."""
    docs = discovery("1.21")
    _entry(docs, "/apis/policy/v1", "poddisruptionbudgets")["verbs"] = [v for v in STD if v != missing]
    api = DiscoveryAPI(docs)
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "get": lambda: api.get("PodDisruptionBudget", "web", "shop"),
        "list": lambda: api.list("PodDisruptionBudget", "shop"),
        "patch": lambda: api.patch("PodDisruptionBudget", "web", "shop", {"spec": {"minAvailable": 1}}),
        "create": lambda: api.create("PodDisruptionBudget", "shop", {"metadata": {"name": "web"}}),
        "delete": lambda: api.delete("PodDisruptionBudget", "web", "shop"),
    }
    for verb, call in calls.items():
        await call()
        _, path, body = api.requests[-1]
        version = "v1beta1" if verb == missing else "v1"
        assert path.startswith(f"/apis/policy/{version}/namespaces/shop/poddisruptionbudgets"), (verb, path)
        if verb == "create":
            assert body["apiVersion"] == f"policy/{version}"


async def test_subresource_calls_check_the_subresource_entry() -> None:
    """A scale patch needs patch on deployments/scale, a log read get on pods/log: without those entries
    the call is refused before any request, although the resources themselves offer the verbs."""
    docs = discovery("1.25")
    docs["/apis/apps/v1"]["resources"] = [r for r in docs["/apis/apps/v1"]["resources"]
                                          if r["name"] != "deployments/scale"]
    docs["/api/v1"]["resources"] = [r for r in docs["/api/v1"]["resources"] if r["name"] != "pods/log"]
    api = DiscoveryAPI(docs)
    with pytest.raises(NotFound, match="deployments/scale"):
        await api.patch("Deployment", "web", "shop", {"spec": {"replicas": 3}}, subresource="scale")
    with pytest.raises(NotFound, match="pods/log"):
        await api.pod_log("web-1", "shop", "app", 10)
    assert await api.patch("Deployment", "web", "shop", {"spec": {"replicas": 3}}) is not None
    assert all(method == "GET" for method, _, _ in api.requests[:-1])
    intact = DiscoveryAPI(discovery("1.25"))
    assert await intact.pod_log("web-1", "shop", "app", 10) == "a log line\n"
    await intact.patch("Deployment", "web", "shop", {"spec": {"replicas": 3}}, subresource="scale")
    assert intact.requests[-1][:2] == ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale")


@pytest.mark.parametrize(("minor", "expected"), [("1.20", "policy/v1beta1"), ("1.25", None)])
def test_kinds_outside_the_registry_are_found_with_their_verb(minor: str, expected: str | None) -> None:
    api = DiscoveryAPI(discovery(minor))
    if expected is None:
        with pytest.raises(NotFound, match="PodSecurityPolicy"):
            api.resource_blocking("PodSecurityPolicy", "list")
        return
    assert api.resource_blocking("PodSecurityPolicy", "list").api_version == expected
    docs = discovery(minor)
    _entry(docs, "/apis/policy/v1beta1", "podsecuritypolicies")["verbs"] = ["get"]
    with pytest.raises(NotFound):
        DiscoveryAPI(docs).resource_blocking("PodSecurityPolicy", "list")


async def test_eviction_version_is_discovered_once_per_ttl() -> None:
    kube = DiscoveryAPI(discovery("1.22"))
    for _ in range(3):
        await kube.evict("p", "ns")
    assert [p for m, p, _ in kube.requests if m == "GET"] == ["/api/v1"]


def test_a_server_without_create_on_pods_eviction_refuses_clearly() -> None:
    core = discovery("1.22")["/api/v1"]
    for res in core["resources"]:
        if res["name"] == "pods/eviction":
            res["verbs"] = []
    with pytest.raises(KubeError, match="pods/eviction"):
        eviction_version_from(core)
    core["resources"] = [r for r in core["resources"] if r["name"] != "pods/eviction"]
    with pytest.raises(KubeError, match="evictions impossible"):
        eviction_version_from(core)


def test_an_entry_without_group_version_means_the_original_eviction() -> None:
    core = discovery("1.20")["/api/v1"]
    for res in core["resources"]:
        if res["name"] == "pods/eviction":
            del res["group"], res["version"]
    assert eviction_version_from(core) == "policy/v1beta1"


def test_errors_are_one_hierarchy_chosen_by_status() -> None:
    assert Kube is ClusterAPI and KubeError is ApiError
    assert isinstance(KubeError(404, "NotFound", "gone"), NotFound)
    import pickle

    err = pickle.loads(pickle.dumps(KubeError(429, "TooManyRequests", "budget", "POST", "/x")))
    assert err.too_many and err.message == "budget" and err.path == "/x"
