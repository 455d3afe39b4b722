"""GitOps ownership from the markers the tools write and the owners they name (kubernaut/gitops/detect.py)."""

from __future__ import annotations

from typing import Any

from kubernaut.cluster.errors import Forbidden
from kubernaut.gitops.detect import detect

APP = {"spec": {"source": {"repoURL": "https://git.example.com/org/deploy.git", "path": "apps/shop",
                           "targetRevision": "main", "helm": {"valueFiles": ["values-prod.yaml"]}},
                "syncPolicy": {"automated": {"prune": True, "selfHeal": True}}}}


def store(objects: dict[tuple[str, str, str | None], dict[str, Any]]):
    seen: list[tuple[str, str, str | None]] = []

    def get(kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        seen.append((kind, name, namespace))
        return objects.get((kind, name, namespace))
    return get, seen


def test_argo_tracking_id_leads_to_the_application_with_repo_path_and_sync_policy() -> None:
    get, seen = store({("Application", "shop", "argocd"): APP})
    meta = {"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/shop"}}
    info = detect(meta, "prod", get)
    assert info is not None and info.tool == "argocd" and info.app == "shop" and info.app_namespace == "argocd"
    assert (info.repo, info.path, info.revision) == ("https://git.example.com/org/deploy.git", "apps/shop", "main")
    assert info.auto_sync is True and info.self_heal is True and info.value_files == ["values-prod.yaml"]
    assert info.unresolved is None and seen == [("Application", "shop", "argocd")]


def test_apps_in_any_namespace_tracking_id_names_the_application_namespace() -> None:
    get, _ = store({("Application", "shop", "team-a"): {"spec": {"source": {"repoURL": "r"}}}})
    info = detect({"annotations": {"argocd.argoproj.io/tracking-id": "team-a_shop:apps/Deployment:prod/shop"}},
                  "prod", get)
    assert info is not None and info.app_namespace == "team-a" and info.auto_sync is False and info.self_heal is False


def test_instance_label_without_an_application_but_with_helm_markers_is_helm() -> None:
    get, _ = store({})
    meta = {"labels": {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "shop"}}
    info = detect(meta, "prod", get)
    assert info is not None and info.tool == "helm" and info.app == "shop"


def test_the_generic_instance_label_alone_is_not_argo_when_no_application_has_that_name() -> None:
    # Every chart and many plain manifests set app.kubernetes.io/instance: by itself it is no GitOps owner.
    get, seen = store({})
    assert detect({"labels": {"app.kubernetes.io/instance": "shop"}}, "prod", get) is None
    assert seen == [("Application", "shop", "argocd")]


def test_the_instance_label_with_an_unreadable_application_stays_argo_with_the_reason() -> None:
    def forbidden(kind: str, name: str, namespace: str | None) -> None:
        raise Forbidden(403, "Forbidden", "applications.argoproj.io is forbidden")
    info = detect({"labels": {"app.kubernetes.io/instance": "shop"}}, "prod", forbidden)
    assert info is not None and info.tool == "argocd" and info.repo is None
    assert "forbidden" in (info.unresolved or "")


def test_argo_specific_markers_count_without_an_application() -> None:
    get, _ = store({})
    for meta in ({"labels": {"argocd.argoproj.io/instance": "shop"}},
                 {"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/shop"}}):
        info = detect(meta, "prod", get)
        assert info is not None and info.tool == "argocd" and "not found" in (info.unresolved or ""), meta
    # A label the operator configured as Argo CD's counts by itself too.
    info = detect({"labels": {"team.example.com/argo-app": "shop"}}, "prod", get,
                  instance_label="team.example.com/argo-app")
    assert info is not None and info.tool == "argocd"


def test_flux_kustomization_and_its_git_repository() -> None:
    get, _ = store({
        ("Kustomization", "apps", "flux-system"): {"spec": {"path": "./clusters/prod/shop", "sourceRef": {
            "kind": "GitRepository", "name": "fleet"}}},
        ("GitRepository", "fleet", "flux-system"): {"spec": {"url": "ssh://git@git.example.com/org/fleet",
                                                             "ref": {"branch": "release"}}}})
    meta = {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace":
                       "flux-system"}}
    info = detect(meta, "prod", get)
    assert info is not None and info.tool == "flux" and info.app == "apps"
    assert (info.repo, info.path, info.revision) == ("ssh://git@git.example.com/org/fleet", "clusters/prod/shop",
                                                     "release")
    assert info.auto_sync is True and info.self_heal is True


def test_suspended_flux_kustomization_does_not_self_heal() -> None:
    get, _ = store({("Kustomization", "apps", "prod"): {"spec": {"suspend": True, "sourceRef": {"name": "x"}}}})
    info = detect({"labels": {"kustomize.toolkit.fluxcd.io/name": "apps"}}, "prod", get)
    assert info is not None and info.self_heal is False and info.auto_sync is False


def test_an_unreadable_owner_keeps_the_tool_and_says_why() -> None:
    def forbidden(kind: str, name: str, namespace: str | None) -> None:
        raise Forbidden(403, "Forbidden", "applications.argoproj.io is forbidden")
    info = detect({"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:prod/shop"}}, "prod",
                  forbidden)
    assert info is not None and info.tool == "argocd" and "forbidden" in (info.unresolved or "")


def test_unmanaged_objects_have_no_owner() -> None:
    get, seen = store({})
    assert detect({"labels": {"app": "shop"}}, "prod", get) is None and seen == []


def test_multi_source_application_uses_the_source_with_manifests() -> None:
    app = {"spec": {"sources": [
        {"repoURL": "registry-1.docker.io/bitnamicharts", "chart": "shop", "targetRevision": "5.1.3"},
        {"repoURL": "https://git.example.com/org/deploy.git", "targetRevision": "production", "ref": "values"},
        {"repoURL": "https://git.example.com/org/deploy.git", "targetRevision": "production", "path": "prod/shop"}]}}
    get, _ = store({("Application", "shop", "argocd"): app})
    info = detect({"labels": {"app.kubernetes.io/instance": "shop"}}, "prod", get)
    assert info is not None and (info.repo, info.path, info.revision) == (
        "https://git.example.com/org/deploy.git", "prod/shop", "production")
