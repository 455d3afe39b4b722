"""Edits in a checked-out repository keep comments and formatting and land in the file that declares the field
(kubernaut/gitops/manifests.py, changes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubernaut.gitops.changes import NoGitForm, changes_for
from kubernaut.gitops.manifests import ManifestNotFound, edit_helm_values, edit_manifests

DEPLOYMENT = """\
# The shop frontend: owned by the payments team.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
spec:
  replicas: 2  # two for HA
  template:
    spec:
      containers:
        - name: app
          image: "registry.example.com/shop:1.0"
          resources:
            limits:
              memory: 64Mi   # raised after INC-12
        - name: sidecar
          image: busybox
---
apiVersion: v1
kind: Service
metadata:
  name: shop
"""


def memory(limit: str = "128Mi"):
    return changes_for("increase_memory_limits", "Deployment", "shop", "prod", {}, {"container": "app",
                                                                                   "limit": limit})


def test_plain_manifest_only_the_changed_line_changes_and_comments_stay(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "shop.yaml").write_text(DEPLOYMENT)
    edits = edit_manifests(tmp_path, "apps", memory())
    assert [e.path for e in edits] == ["apps/shop.yaml"]
    changed = [line for line in edits[0].diff().splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-              memory: 64Mi   # raised after INC-12",
                       "+              memory: 128Mi  # raised after INC-12"]
    assert "# The shop frontend" in edits[0].after and "kind: Service" in edits[0].after


def test_kustomize_overlay_patch_that_sets_the_field_is_edited_not_the_base(tmp_path: Path) -> None:
    base, overlay = tmp_path / "base", tmp_path / "overlays" / "prod"
    base.mkdir(parents=True)
    overlay.mkdir(parents=True)
    (base / "deployment.yaml").write_text(DEPLOYMENT)
    (base / "kustomization.yaml").write_text("resources:\n  - deployment.yaml\n")
    (overlay / "kustomization.yaml").write_text(
        "resources:\n  - ../../base\npatches:\n  - path: memory.yaml\nimages:\n"
        "  - name: registry.example.com/shop\n    newTag: \"1.0\"  # pinned by release\n")
    patch = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  template:\n    spec:\n"
             "      containers:\n        - name: app\n          resources:\n            limits:\n"
             "              memory: 96Mi # prod needs more\n")
    (overlay / "memory.yaml").write_text(patch)
    image = changes_for("set_image", "Deployment", "shop", "prod", {}, {"container": "app",
                                                                      "image": "registry.example.com/shop:1.1"})
    edits = {e.path: e for e in edit_manifests(tmp_path, "overlays/prod", memory("192Mi") + image)}
    assert set(edits) == {"overlays/prod/memory.yaml", "overlays/prod/kustomization.yaml"}
    assert "memory: 192Mi # prod needs more" in edits["overlays/prod/memory.yaml"].after
    assert 'newTag: "1.1"  # pinned by release' in edits["overlays/prod/kustomization.yaml"].after
    assert (base / "deployment.yaml").read_text() == DEPLOYMENT  # edits are returned, not written


def test_replicas_are_added_to_a_manifest_that_does_not_declare_them(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DEPLOYMENT.replace("  replicas: 2  # two for HA\n", ""))
    edits = edit_manifests(tmp_path, None, changes_for("scale_deployment", "Deployment", "shop", "prod",
                                                       {"replicas": 4}, {"replicas": 4}))
    changed = [line for line in edits[0].diff().splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["+  replicas: 4"]


def test_helm_values_by_the_configured_mapping(tmp_path: Path) -> None:
    (tmp_path / "chart").mkdir()
    (tmp_path / "chart" / "values-prod.yaml").write_text(
        "# production values\nreplicaCount: 2\nresources:\n  limits:\n    memory: 64Mi  # see INC-12\n")
    mapping = {"containers.*.resources.limits.memory": "resources.limits.memory", "replicas": "replicaCount"}
    edits = edit_helm_values(tmp_path, "chart/values-prod.yaml", mapping, memory())
    assert edits[0].after == ("# production values\nreplicaCount: 2\nresources:\n  limits:\n"
                              "    memory: 128Mi # see INC-12\n")
    with pytest.raises(ManifestNotFound, match="helm_values"):
        edit_helm_values(tmp_path, "chart/values-prod.yaml", mapping,
                         changes_for("suspend_cronjob", "CronJob", "c", "prod", {}, {}))


def test_unknown_layout_is_manifest_not_found(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text("kind: ConfigMap\nmetadata:\n  name: x\n")
    with pytest.raises(ManifestNotFound, match="Deployment shop"):
        edit_manifests(tmp_path, None, memory())
    with pytest.raises(ManifestNotFound, match="outside"):
        edit_manifests(tmp_path, "../..", memory())


def test_actions_without_a_git_form_say_so() -> None:
    with pytest.raises(NoGitForm):
        changes_for("restart_pod", "Pod", "p", "ns", {}, {})
    with pytest.raises(NoGitForm, match="previous revision"):
        changes_for("rollback_deployment", "Deployment", "d", "ns", {}, {"to_revision": 3})
