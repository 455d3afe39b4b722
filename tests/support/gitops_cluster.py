"""The GitOps side of the test control plane: Argo CD's Application and Flux's Kustomization/GitRepository CRDs
(trimmed to the fields Kubernaut reads; the 1.20 API server loads them without CEL), and a small reconciler
that does what Argo CD / Flux do to Kubernaut's targets: apply the repository's main-branch manifests with
server-side apply under the controller's field manager, and so revert live drift on the objects it manages."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.errors import NotFound

_PRESERVE = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _crd(group: str, kind: str, plural: str, version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                   "spec": {**spec, "x-kubernetes-preserve-unknown-fields": True},
                                   "status": _PRESERVE}}}}]}}


_SOURCE = {"type": "object", "properties": {
    "repoURL": {"type": "string"}, "path": {"type": "string"}, "targetRevision": {"type": "string"},
    "chart": {"type": "string"},
    "helm": {"type": "object", "properties": {"valueFiles": {"type": "array", "items": {"type": "string"}}},
             "x-kubernetes-preserve-unknown-fields": True}}, "x-kubernetes-preserve-unknown-fields": True}

# argoproj/argo-cd manifests/crds/application-crd.yaml and fluxcd's kustomize-controller / source-controller CRDs,
# kept to what kubernaut/gitops/detect.py reads.
CRDS = [
    _crd("argoproj.io", "Application", "applications", "v1alpha1", {"type": "object", "properties": {
        "source": _SOURCE, "sources": {"type": "array", "items": _SOURCE},
        "syncPolicy": {"type": "object", "properties": {"automated": {"type": "object", "properties": {
            "prune": {"type": "boolean"}, "selfHeal": {"type": "boolean"}}}},
            "x-kubernetes-preserve-unknown-fields": True}}}),
    _crd("kustomize.toolkit.fluxcd.io", "Kustomization", "kustomizations", "v1", {"type": "object", "properties": {
        "path": {"type": "string"}, "suspend": {"type": "boolean"}, "interval": {"type": "string"},
        "prune": {"type": "boolean"}, "sourceRef": {"type": "object", "properties": {
            "kind": {"type": "string"}, "name": {"type": "string"}, "namespace": {"type": "string"}}}}}),
    _crd("source.toolkit.fluxcd.io", "GitRepository", "gitrepositories", "v1", {"type": "object", "properties": {
        "url": {"type": "string"}, "interval": {"type": "string"}, "ref": {"type": "object", "properties": {
            "branch": {"type": "string"}, "tag": {"type": "string"}, "semver": {"type": "string"},
            "commit": {"type": "string"}}}}}),
]
_CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def install_crds(api: ClusterAPI, timeout_s: float = 30.0) -> list[str]:
    """Create the CRDs (those already there are left as they are) and wait until each group is served."""
    created = []
    for crd in CRDS:
        name = crd["metadata"]["name"]
        try:
            api.call("GET", f"{_CRD_PATH}/{name}")
        except NotFound:
            api.call("POST", _CRD_PATH, body=crd)
            created.append(name)
    deadline = time.monotonic() + timeout_s
    for crd in CRDS:
        group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
        while True:
            try:
                doc = api.call("GET", f"/apis/{group}/{version}")
                if any(r.get("name") == crd["spec"]["names"]["plural"] for r in doc.get("resources") or []):
                    break
            except NotFound:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"CRD {crd['metadata']['name']} not served within {timeout_s}s")
            time.sleep(0.2)
    return created


def remove_crds(api: ClusterAPI, names: list[str]) -> None:
    for name in names:
        try:
            api.call("DELETE", f"{_CRD_PATH}/{name}")
        except NotFound:
            pass


def create_object(api: ClusterAPI, doc: dict[str, Any]) -> dict[str, Any]:
    res = api.resource_blocking(doc["kind"], "create")
    return api.call("POST", res.path(doc["metadata"].get("namespace")), body=doc)


class Reconciler:
    """Applies ``path`` of ``branch`` in the bare repository to the API server, as the GitOps controller would.

    With ``kustomization`` it is Flux's kustomize-controller instead: nothing is applied while the Kustomization
    is suspended; an in-cluster object annotated ``kustomize.toolkit.fluxcd.io/reconcile: disabled`` is skipped
    (neither applied nor pruned) while the others are applied; applied objects get Flux's owner labels."""

    MANAGER = "argocd-application-controller"
    FLUX_MANAGER = "kustomize-controller"

    def __init__(self, api: ClusterAPI, bare: Path, path: str, branch: str = "main",
                 application: tuple[str, str] | None = None, kustomization: tuple[str, str] | None = None) -> None:
        self.api = api
        self.kustomization = kustomization
        self.skipped: list[str] = []  # Kind/name of objects left alone (reconcile disabled), last sync
        # (name, namespace) of the Application whose spec.syncPolicy.automated.selfHeal this reconciler honours,
        # as Argo CD does: with it off, a new commit is still synced but live drift is left alone.
        self.application = application
        self.bare = bare
        self.path = path.strip("/")
        self.branch = branch
        self.applied: list[str] = []  # commit SHAs synced
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.bare, check=True, capture_output=True, text=True).stdout

    def manifests(self) -> list[dict[str, Any]]:
        files = self._git("ls-tree", "-r", "--name-only", self.branch, "--", self.path).split()
        docs = []
        for name in files:
            if name.endswith((".yaml", ".yml")) and not name.endswith("kustomization.yaml"):
                docs += [d for d in yaml.safe_load_all(self._git("show", f"{self.branch}:{name}")) if d]
        return docs

    def self_heal(self) -> bool:
        if self.kustomization is not None:
            name, namespace = self.kustomization
            ks = self.api.get_or_none_blocking("Kustomization", name, namespace) or {}
            return not (ks.get("spec") or {}).get("suspend")
        if self.application is None:
            return True
        name, namespace = self.application
        app = self.api.get_or_none_blocking("Application", name, namespace) or {}
        automated = ((app.get("spec") or {}).get("syncPolicy") or {}).get("automated")
        return isinstance(automated, dict) and bool(automated.get("selfHeal"))

    def sync_once(self) -> int:
        """One sync: every manifest applied (force: the controller owns its fields, drift is reverted). With
        self-heal paused and no new commit since the last sync, nothing is applied: the drift stays."""
        head = self._git("rev-parse", self.branch).strip()
        if self.kustomization is not None and not self.self_heal():
            return 0  # a suspended Kustomization applies nothing, new commits included
        if self.applied and self.applied[-1] == head and not self.self_heal():
            return 0
        count = 0
        self.skipped = []
        for doc in self.manifests():
            meta = doc.setdefault("metadata", {})
            res = self.api.resource_blocking(doc["kind"], "patch")
            manager = self.MANAGER
            if self.kustomization is not None:
                manager = self.FLUX_MANAGER
                live = self.api.get_or_none_blocking(doc["kind"], meta["name"], meta.get("namespace")) or {}
                if ((live.get("metadata") or {}).get("annotations") or {}).get(
                        "kustomize.toolkit.fluxcd.io/reconcile") == "disabled":
                    self.skipped.append(f"{doc['kind']}/{meta['name']}")
                    continue
                name, namespace = self.kustomization
                meta.setdefault("labels", {}).update({"kustomize.toolkit.fluxcd.io/name": name,
                                                      "kustomize.toolkit.fluxcd.io/namespace": namespace})
            self.api.call("PATCH", res.path(meta.get("namespace"), meta["name"]),
                          query=[("fieldManager", manager), ("force", "true")], body=json.dumps(doc),
                          content_type="application/apply-patch+yaml")
            count += 1
        self.applied.append(head)
        if self.application is not None:  # what Argo CD reports: the revision the Application is synced to
            name, namespace = self.application
            res = self.api.resource_blocking("Application", "patch")
            if self.api.get_or_none_blocking("Application", name, namespace) is not None:
                self.api.call("PATCH", res.path(namespace, name, "status"),
                              body={"status": {"sync": {"status": "Synced", "revision": head}}},
                              content_type="application/merge-patch+json")
        return count

    def start(self, interval_s: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.sync_once()
                except Exception:  # the next round tries again, as a controller does
                    pass
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
