"""Which API version the executor speaks, chosen from discovery documents of several Kubernetes minors.

The documents are excerpts of what each server lists (``GET /api/v1`` and the policy group), written
from the Kubernetes API reference: pods/eviction names its own group/version in the core list, which
is policy/v1beta1 up to 1.21 and policy/v1 from 1.22 on, while the policy group serves v1
PodDisruptionBudgets from 1.21 and drops v1beta1 in 1.25. The real 1.20 server is checked in
tests/k8s/test_executor.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubernaut.execution.kube import Kube, KubeError, eviction_version_from


def _core(eviction_version: str | None) -> dict[str, Any]:
    eviction: dict[str, Any] = {"name": "pods/eviction", "singularName": "", "namespaced": True, "kind": "Eviction",
                                "verbs": ["create"]}
    if eviction_version:
        eviction.update(group="policy", version=eviction_version)
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "", "namespaced": False, "kind": "Namespace",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
         "shortNames": ["po"], "categories": ["all"]},
        {"name": "pods/attach", "singularName": "", "namespaced": True, "kind": "PodAttachOptions",
         "verbs": ["create", "get"]},
        {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding", "verbs": ["create"]},
        eviction,
        {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
        {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "patch", "update"]},
    ]}


def _policy_group(versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"policy/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": "policy", "versions": entries,
            "preferredVersion": entries[0]}


_PDB = {"name": "poddisruptionbudgets", "singularName": "", "namespaced": True, "kind": "PodDisruptionBudget",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["pdb"]}
_PDB_STATUS = {"name": "poddisruptionbudgets/status", "singularName": "", "namespaced": True,
               "kind": "PodDisruptionBudget", "verbs": ["get", "patch", "update"]}
_PSP = {"name": "podsecuritypolicies", "singularName": "", "namespaced": False, "kind": "PodSecurityPolicy",
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        "shortNames": ["psp"]}


def _policy_version(version: str, with_psp: bool) -> dict[str, Any]:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"policy/{version}",
            "resources": [_PDB, _PDB_STATUS, *([_PSP] if with_psp else [])]}


# minor → {path: document}
DISCOVERY: dict[str, dict[str, dict[str, Any]]] = {
    "1.20": {"/api/v1": _core("v1beta1"), "/apis/policy": _policy_group(["v1beta1"]),
             "/apis/policy/v1beta1": _policy_version("v1beta1", True)},
    "1.21": {"/api/v1": _core("v1beta1"), "/apis/policy": _policy_group(["v1", "v1beta1"]),
             "/apis/policy/v1": _policy_version("v1", False), "/apis/policy/v1beta1": _policy_version("v1beta1", True)},
    "1.22": {"/api/v1": _core("v1"), "/apis/policy": _policy_group(["v1", "v1beta1"]),
             "/apis/policy/v1": _policy_version("v1", False), "/apis/policy/v1beta1": _policy_version("v1beta1", True)},
    "1.25": {"/api/v1": _core("v1"), "/apis/policy": _policy_group(["v1"]),
             "/apis/policy/v1": _policy_version("v1", False)},
}


class DiscoveryKube(Kube):
    """A Kube whose server is a set of discovery documents; records every request."""

    def __init__(self, docs: dict[str, dict[str, Any]]) -> None:
        super().__init__(None)  # type: ignore[arg-type]  # no ApiClient: request() is replaced
        self.docs = docs
        self.requests: list[tuple[str, str, Any]] = []

    async def request(self, method: str, path: str, *, query: Any = None, body: Any = None, **_: Any) -> Any:
        self.requests.append((method, path, body))
        if method == "GET":
            if path not in self.docs:
                raise KubeError(404, "NotFound", "the server could not find the requested resource", method, path)
            return copy.deepcopy(self.docs[path])
        return {"kind": "Status", "status": "Success"}


@pytest.mark.parametrize(("minor", "eviction", "pdb"), [
    ("1.20", "policy/v1beta1", "policy/v1beta1"),
    # The case the policy group alone gets wrong: v1 PDBs are served, v1 Evictions are not accepted yet.
    ("1.21", "policy/v1beta1", "policy/v1"),
    ("1.22", "policy/v1", "policy/v1"),
    ("1.25", "policy/v1", "policy/v1"),
])
async def test_eviction_and_pdb_versions_per_minor(minor: str, eviction: str, pdb: str) -> None:
    kube = DiscoveryKube(DISCOVERY[minor])
    assert await kube.eviction_version() == eviction
    assert (await kube.resource("PodDisruptionBudget")).api_version == pdb
    await kube.evict("web-1", "shop", uid="u-1", dry_run=True)
    method, path, body = kube.requests[-1]
    assert (method, path) == ("POST", "/api/v1/namespaces/shop/pods/web-1/eviction")
    assert body["apiVersion"] == eviction and body["kind"] == "Eviction"
    assert body["deleteOptions"] == {"preconditions": {"uid": "u-1"}, "dryRun": ["All"]}


async def test_eviction_version_is_discovered_once_per_ttl() -> None:
    kube = DiscoveryKube(DISCOVERY["1.22"])
    for _ in range(3):
        await kube.evict("p", "ns")
    assert [p for m, p, _ in kube.requests if m == "GET"] == ["/api/v1"]


def test_a_server_without_create_on_pods_eviction_refuses_clearly() -> None:
    core = _core("v1")
    for res in core["resources"]:
        if res["name"] == "pods/eviction":
            res["verbs"] = []
    with pytest.raises(KubeError, match="pods/eviction"):
        eviction_version_from(core)
    core["resources"] = [r for r in core["resources"] if r["name"] != "pods/eviction"]
    with pytest.raises(KubeError, match="evictions impossible"):
        eviction_version_from(core)


def test_an_entry_without_group_version_means_the_original_eviction() -> None:
    assert eviction_version_from(_core(None)) == "policy/v1beta1"
