"""Who owns the desired state of a workload: Argo CD, Flux or Helm, read from the markers the tools write
on the objects they manage and, where readable, from the owning Application / Kustomization / HelmRelease.

- Argo CD: the ``argocd.argoproj.io/tracking-id`` annotation (``<app>:<group>/<kind>:<ns>/<name>``; ``<app>``
  is ``<namespace>_<name>`` for Applications outside Argo CD's own namespace), or the instance label Argo CD
  is configured with (``app.kubernetes.io/instance`` by default, ``argocd.argoproj.io/instance`` in old set-ups).
  The Application gives ``spec.source(s)`` (repoURL, path, targetRevision, helm.valueFiles) and
  ``spec.syncPolicy.automated`` (auto-sync, selfHeal).
- Flux: ``kustomize.toolkit.fluxcd.io/name|namespace`` → the Kustomization (path, suspend) and its
  GitRepository (url, ref); ``helm.toolkit.fluxcd.io/name|namespace`` → the HelmRelease and its chart source.
  Flux re-applies on every interval, so a live change is reverted while the object is not suspended.
- Helm: ``app.kubernetes.io/managed-by: Helm`` / ``meta.helm.sh/release-name``: no repository is known from
  the cluster; the operator's repository mapping says where the values live.

The reader is a blocking ``get(kind, name, namespace) -> object | None`` (``ClusterAPI.get_or_none_blocking``):
an owner that cannot be read (CRD not served, no RBAC) leaves the tool known and ``unresolved`` saying why.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from kubernaut.cluster.errors import ClusterError
from kubernaut.gitops.models import GitOpsInfo

logger = logging.getLogger(__name__)

Getter = Callable[[str, str, "str | None"], "dict[str, Any] | None"]

TRACKING_ID = "argocd.argoproj.io/tracking-id"
LEGACY_INSTANCE = "argocd.argoproj.io/instance"
DEFAULT_INSTANCE_LABEL = "app.kubernetes.io/instance"
FLUX_KS_NAME, FLUX_KS_NS = "kustomize.toolkit.fluxcd.io/name", "kustomize.toolkit.fluxcd.io/namespace"
FLUX_HR_NAME, FLUX_HR_NS = "helm.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/namespace"
HELM_RELEASE, HELM_RELEASE_NS = "meta.helm.sh/release-name", "meta.helm.sh/release-namespace"
MANAGED_BY = "app.kubernetes.io/managed-by"


# The field managers GitOps controllers write with (Argo CD's application controller, Flux's controllers): a
# spec change by one of them after a live action is the controller restoring Git's value (self-heal).
CONTROLLER_MANAGERS = ("argocd-controller", "argocd-application-controller", "argocd", "kustomize-controller",
                       "helm-controller", "flux-client-side-apply", "gotk-sync-manager")


def is_controller_manager(manager: str) -> bool:
    return any(manager == m or manager.startswith(m + "-") for m in CONTROLLER_MANAGERS)


def normalise_url(url: str) -> str:
    """Repository identity: scheme, credentials, trailing '.git' and '/' dropped; scp-like SSH made a path."""
    u = re.sub(r"^[a-z+]+://", "", url.strip())
    u = re.sub(r"^[^@/]+@", "", u)
    u = re.sub(r"^([^/:]+):(?!\d)", r"\1/", u)  # git@host:org/repo → host/org/repo
    return u.rstrip("/").removesuffix(".git").lower()


def _clip(value: Any, n: int = 253) -> str | None:
    return str(value)[:n] if value not in (None, "") else None


def argo_app_of(metadata: dict[str, Any], instance_label: str = DEFAULT_INSTANCE_LABEL,
                argocd_namespace: str = "argocd") -> tuple[str, str, str] | None:
    """(application, its namespace, the marker) from an object's metadata, or None."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    tracking = annotations.get(TRACKING_ID)
    if isinstance(tracking, str) and ":" in tracking:
        app = tracking.split(":", 1)[0]
        ns = argocd_namespace
        if "_" in app:  # apps in any namespace: "<namespace>_<name>"
            ns, app = app.split("_", 1)
        if app:
            return app[:253], ns[:63], TRACKING_ID
    for label in (LEGACY_INSTANCE, instance_label):
        value = labels.get(label)
        if isinstance(value, str) and value:
            return value[:253], argocd_namespace, label
    return None


def markers(metadata: dict[str, Any], instance_label: str = DEFAULT_INSTANCE_LABEL) -> bool:
    """Whether any GitOps or Helm marker is present (cheap check before reading owners)."""
    marks = {**(metadata.get("labels") or {}), **(metadata.get("annotations") or {})}
    keys = (TRACKING_ID, LEGACY_INSTANCE, instance_label, FLUX_KS_NAME, FLUX_HR_NAME, HELM_RELEASE)
    return any(k in marks for k in keys) or str(marks.get(MANAGED_BY, "")).lower() == "helm"


def detect(metadata: dict[str, Any], namespace: str | None, get: Getter | None, *,
           instance_label: str = DEFAULT_INSTANCE_LABEL, argocd_namespaces: Sequence[str] = ("argocd",)
           ) -> GitOpsInfo | None:
    """The owner of ``metadata``'s object (the top of its owner chain), or None when nothing manages it."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    helm = str(labels.get(MANAGED_BY, "")).lower() == "helm" or HELM_RELEASE in annotations
    # Flux first: its labels are unambiguous; then Argo's tracking id; then the (shared) instance label.
    if labels.get(FLUX_KS_NAME):
        return _flux_kustomization(labels[FLUX_KS_NAME], labels.get(FLUX_KS_NS) or namespace, get)
    if labels.get(FLUX_HR_NAME):
        return _flux_helmrelease(labels[FLUX_HR_NAME], labels.get(FLUX_HR_NS) or namespace, get)
    argo = argo_app_of(metadata, instance_label, argocd_namespaces[0] if argocd_namespaces else "argocd")
    if argo is not None:
        app, app_ns, via = argo
        namespaces = [app_ns] if via == TRACKING_ID else list(argocd_namespaces) or [app_ns]
        info, absent = _argo_application(app, namespaces, get, via)
        # app.kubernetes.io/instance is the recommended label of every chart and many plain manifests, not
        # Argo CD's alone: it says Argo CD only with an Application of that name behind it. When no such
        # Application exists (or no Argo CD at all) it says nothing; when it cannot be read (forbidden,
        # unreachable) it stays Argo CD's, the cautious reading. Argo's own markers, and a label the operator
        # configured as Argo's, count by themselves.
        generic = via == DEFAULT_INSTANCE_LABEL
        if info.unresolved is None or not generic or (not absent and not helm):
            return info
    if helm:
        release = annotations.get(HELM_RELEASE) or labels.get(DEFAULT_INSTANCE_LABEL)
        return GitOpsInfo(tool="helm", app=_clip(release), app_namespace=_clip(
            annotations.get(HELM_RELEASE_NS) or namespace, 63), via=HELM_RELEASE if HELM_RELEASE in annotations
            else MANAGED_BY)
    return None


_NOT_FOUND = " not found (or its CRD is not served)"


def _read(get: Getter | None, kind: str, name: str, namespace: str | None) -> tuple[dict[str, Any] | None, str | None]:
    if get is None:
        return None, "no Kubernetes access"
    try:
        obj = get(kind, name, namespace)
    except ClusterError as exc:
        return None, f"{kind} {namespace}/{name}: {exc}"[:500]
    if obj is None:
        return None, f"{kind} {namespace}/{name}{_NOT_FOUND}"
    return obj, None


def _argo_application(app: str, namespaces: Sequence[str], get: Getter | None, via: str
                      ) -> tuple[GitOpsInfo, bool]:
    """The Application's ownership, and whether it is known to be absent (every lookup answered "not found")."""
    why = None
    absent = get is not None
    for ns in namespaces:
        obj, why = _read(get, "Application", app, ns)
        if obj is not None:
            return _from_application(obj, app, ns, via), False
        absent = absent and why is not None and why.endswith(_NOT_FOUND)
    return GitOpsInfo(tool="argocd", app=app, app_namespace=namespaces[0] if namespaces else None, via=via,
                      unresolved=why), absent


def _from_application(obj: dict[str, Any], app: str, ns: str, via: str) -> GitOpsInfo:
    spec = obj.get("spec") or {}
    sources = spec.get("sources") or []
    # Multi-source Applications: the source with a path is the one holding manifests (a chart repository or a
    # values-only "ref" source holds none).
    source = spec.get("source") or next((x for x in sources if isinstance(x, dict) and x.get("path")),
                                        sources[0] if sources else {}) or {}
    automated = (spec.get("syncPolicy") or {}).get("automated")
    helm = source.get("helm") or {}
    status_rev = ((obj.get("status") or {}).get("sync") or {}).get("revision")
    return GitOpsInfo(
        tool="argocd", app=app, app_namespace=ns, repo=_clip(source.get("repoURL"), 2048),
        path=_clip(source.get("path") or source.get("chart"), 1024),
        revision=_clip(source.get("targetRevision") or status_rev or "HEAD", 255),
        auto_sync=automated is not None, self_heal=bool((automated or {}).get("selfHeal")),
        value_files=[str(v)[:1024] for v in (helm.get("valueFiles") or [])[:20]], via=f"{via} → Application {ns}/{app}")


def _git_repository(ref: dict[str, Any], default_ns: str | None, get: Getter | None
                    ) -> tuple[str | None, str | None, str | None]:
    """(url, revision, why not) of a Flux source reference."""
    if (ref.get("kind") or "GitRepository") != "GitRepository" or not ref.get("name"):
        return None, None, f"source {ref.get('kind')}/{ref.get('name')} is not a GitRepository"
    repo, why = _read(get, "GitRepository", ref["name"], ref.get("namespace") or default_ns)
    if repo is None:
        return None, None, why
    spec_ref = (repo.get("spec") or {}).get("ref") or {}
    revision = spec_ref.get("branch") or spec_ref.get("tag") or spec_ref.get("semver") or spec_ref.get("commit")
    return _clip((repo.get("spec") or {}).get("url"), 2048), _clip(revision, 255), None


def _flux_kustomization(name: str, ns: str | None, get: Getter | None) -> GitOpsInfo:
    via = FLUX_KS_NAME
    ks, why = _read(get, "Kustomization", name, ns)
    if ks is None:
        return GitOpsInfo(tool="flux", app=_clip(name), app_namespace=_clip(ns, 63), via=via, unresolved=why,
                          self_heal=True)
    spec = ks.get("spec") or {}
    url, revision, why = _git_repository(spec.get("sourceRef") or {}, ns, get)
    suspended = bool(spec.get("suspend"))
    return GitOpsInfo(tool="flux", app=_clip(name), app_namespace=_clip(ns, 63), repo=url,
                      path=_clip(str(spec.get("path") or "./").removeprefix("./") or ".", 1024), revision=revision,
                      auto_sync=not suspended, self_heal=not suspended, via=f"{via} → Kustomization {ns}/{name}",
                      unresolved=why)


def _flux_helmrelease(name: str, ns: str | None, get: Getter | None) -> GitOpsInfo:
    via = FLUX_HR_NAME
    hr, why = _read(get, "HelmRelease", name, ns)
    if hr is None:
        return GitOpsInfo(tool="flux", app=_clip(name), app_namespace=_clip(ns, 63), via=via, unresolved=why,
                          self_heal=True)
    spec = hr.get("spec") or {}
    chart = ((spec.get("chart") or {}).get("spec")) or {}
    url, revision, why = _git_repository(chart.get("sourceRef") or {}, ns, get)
    suspended = bool(spec.get("suspend"))
    return GitOpsInfo(tool="flux", app=_clip(name), app_namespace=_clip(ns, 63), repo=url,
                      path=_clip(chart.get("chart"), 1024), revision=revision, auto_sync=not suspended,
                      self_heal=not suspended,
                      value_files=[str(v)[:1024] for v in (chart.get("valuesFiles") or [])[:20]],
                      via=f"{via} → HelmRelease {ns}/{name}", unresolved=why)
