"""Where each kind Kubernaut reads or writes lives: API group, plural, scope, and the versions we speak.

Which of those versions a call uses is decided per server and per verb by discovery
(``kubernaut.cluster.discovery``), never assumed from the server's version number.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Kind:
    """A kind's group, plural and scope, and the versions we can speak, best first."""

    group: str
    plural: str
    namespaced: bool
    versions: tuple[str, ...]


@dataclass(frozen=True)
class Resource:
    """A kind at one version of its group: what a request path is built from."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


# Older versions stay listed while servers we support still need them: batch/v1 CronJobs from 1.21
# (batch/v1beta1 before, removed in 1.25), autoscaling/v2 from 1.23 (v2beta2 until 1.26), policy/v1
# PodDisruptionBudgets from 1.21 (v1beta1 removed in 1.25), networking.k8s.io/v1 Ingress from 1.19.
KINDS: dict[str, Kind] = {
    "Pod": Kind("", "pods", True, ("v1",)),
    "Node": Kind("", "nodes", False, ("v1",)),
    "Namespace": Kind("", "namespaces", False, ("v1",)),
    "PersistentVolumeClaim": Kind("", "persistentvolumeclaims", True, ("v1",)),
    "PersistentVolume": Kind("", "persistentvolumes", False, ("v1",)),
    "Event": Kind("", "events", True, ("v1",)),
    "Service": Kind("", "services", True, ("v1",)),
    "Endpoints": Kind("", "endpoints", True, ("v1",)),
    "ConfigMap": Kind("", "configmaps", True, ("v1",)),
    "Secret": Kind("", "secrets", True, ("v1",)),
    "ReplicationController": Kind("", "replicationcontrollers", True, ("v1",)),
    "ResourceQuota": Kind("", "resourcequotas", True, ("v1",)),
    "LimitRange": Kind("", "limitranges", True, ("v1",)),
    "Deployment": Kind("apps", "deployments", True, ("v1",)),
    "StatefulSet": Kind("apps", "statefulsets", True, ("v1",)),
    "DaemonSet": Kind("apps", "daemonsets", True, ("v1",)),
    "ReplicaSet": Kind("apps", "replicasets", True, ("v1",)),
    "ControllerRevision": Kind("apps", "controllerrevisions", True, ("v1",)),
    "Job": Kind("batch", "jobs", True, ("v1",)),
    "CronJob": Kind("batch", "cronjobs", True, ("v1", "v1beta1")),
    "HorizontalPodAutoscaler": Kind("autoscaling", "horizontalpodautoscalers", True, ("v2", "v2beta2", "v1")),
    "PodDisruptionBudget": Kind("policy", "poddisruptionbudgets", True, ("v1", "v1beta1")),
    "NetworkPolicy": Kind("networking.k8s.io", "networkpolicies", True, ("v1",)),
    "Ingress": Kind("networking.k8s.io", "ingresses", True, ("v1",)),
    "StorageClass": Kind("storage.k8s.io", "storageclasses", False, ("v1",)),
    # GitOps owners, read (never written) to know where a workload's desired state lives (kubernaut/gitops/).
    "Application": Kind("argoproj.io", "applications", True, ("v1alpha1",)),
    "Kustomization": Kind("kustomize.toolkit.fluxcd.io", "kustomizations", True, ("v1", "v1beta2", "v1beta1")),
    "HelmRelease": Kind("helm.toolkit.fluxcd.io", "helmreleases", True, ("v2", "v2beta2", "v2beta1")),
    "GitRepository": Kind("source.toolkit.fluxcd.io", "gitrepositories", True, ("v1", "v1beta2", "v1beta1")),
}

# Kinds served by CustomResourceDefinitions that another project installs (Argo CD, Flux): present on some
# servers only, whatever their version.
CUSTOM_RESOURCE_KINDS: frozenset[str] = frozenset({"Application", "Kustomization", "HelmRelease", "GitRepository"})

# The kinds the action catalog acts on or reads: the executor reads a target's own labels (scope)
# only for these, never for a Secret or ConfigMap that a hostile alert names.
EXECUTOR_KINDS: frozenset[str] = frozenset({
    "Pod", "Node", "Namespace", "PersistentVolumeClaim", "PersistentVolume", "Event", "Service",
    "ReplicationController", "ResourceQuota", "LimitRange", "Deployment", "StatefulSet", "DaemonSet",
    "ReplicaSet", "Job", "CronJob", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
    "StorageClass",
    # GitOps owners whose self-heal live-and-propose pauses and resumes (pause/resume_gitops_self_heal).
    "Application", "Kustomization", "HelmRelease",
})
