"""A reference to one Kubernetes object: the target of incidents and actions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Kinds whose objects live outside any namespace. "Cluster" is ours: the target of alerts that name
# no workload and no namespace (e.g. a control-plane component), so they can still be notified.
CLUSTER_SCOPED_KINDS = frozenset({
    "Cluster", "Node", "Namespace", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "StorageClass",
    "CustomResourceDefinition", "PriorityClass", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
})


class ResourceRef(BaseModel):
    """Kind + name (+ namespace) of an object; hashable so it can key caches and locks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str = Field(min_length=1, max_length=63, examples=["Deployment"])
    name: str = Field(min_length=1, max_length=253, examples=["web"])
    namespace: str | None = Field(default=None, max_length=63, examples=["default"])

    @property
    def cluster_scoped(self) -> bool:
        return self.kind in CLUSTER_SCOPED_KINDS

    @property
    def key(self) -> str:
        """Stable identity used for fingerprints, locks and cooldowns."""
        return f"{self.namespace or '_cluster'}:{self.kind}:{self.name}"

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"
