"""Traits of a workload that change the right remediation: who manages it, whether it holds state."""

from __future__ import annotations

from typing import Any

from kubernaut.context.models import Traits

# Markers written by the tools themselves (labels and annotations on the managed object).
_ARGO_MARKERS = ("argocd.argoproj.io/instance", "argocd.argoproj.io/tracking-id")
_FLUX_MARKERS = ("kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name")
_HELM_RELEASE = "meta.helm.sh/release-name"


def detect(kind: str | None, metadata: dict[str, Any], *, has_hpa: bool, has_pdb: bool, has_pvc: bool,
           replicas: int | None) -> Traits:
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    marks = {**labels, **annotations}
    gitops_tool = None
    if any(m in marks for m in _ARGO_MARKERS):
        gitops_tool = "argocd"
    elif any(m in marks for m in _FLUX_MARKERS):
        gitops_tool = "flux"
    helm = labels.get("app.kubernetes.io/managed-by", "").lower() == "helm" or _HELM_RELEASE in annotations
    return Traits(
        gitops_managed=gitops_tool is not None, gitops_tool=gitops_tool,
        helm_managed=helm, helm_release=str(annotations.get(_HELM_RELEASE))[:63] if _HELM_RELEASE in annotations
        else None,
        stateful=kind == "StatefulSet" or has_pvc, has_hpa=has_hpa, has_pdb=has_pdb, has_pvc=has_pvc,
        single_replica=replicas == 1,
    )
