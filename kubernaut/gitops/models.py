"""What Kubernaut knows about the GitOps ownership of a target, as recorded in the incident context."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Tool = Literal["argocd", "flux", "helm"]
# live: change the cluster (as without GitOps); propose: open a change in Git, never touch the cluster;
# live-and-propose: the live fix now and the change in Git so that it survives the next sync.
Mode = Literal["live", "propose", "live-and-propose"]
FallbackMode = Literal["approval", "escalate", "live"]


class GitOpsInfo(BaseModel):
    """``gitops: {tool, app, repo, path, revision, auto_sync, self_heal}`` of an incident's target.

    Every string here was read from the cluster (labels, annotations, the owning Application/Kustomization):
    untrusted text, clipped, never interpreted beyond matching repository URLs against the configured ones."""

    model_config = ConfigDict(frozen=True)

    tool: Tool
    app: str | None = Field(default=None, max_length=253, description="Application, Kustomization, HelmRelease "
                            "or Helm release name")
    app_namespace: str | None = Field(default=None, max_length=63)
    repo: str | None = Field(default=None, max_length=2048, description="the Git repository URL the owner syncs")
    path: str | None = Field(default=None, max_length=1024, description="the directory inside the repository")
    revision: str | None = Field(default=None, max_length=255, description="branch, tag or commit it follows")
    auto_sync: bool | None = None
    self_heal: bool | None = None
    value_files: list[str] = Field(default_factory=list, max_length=20, description="Helm values files (Argo CD)")
    via: str = Field(max_length=200, description="the marker or object that told us")
    unresolved: str | None = Field(default=None, max_length=500,
                                   description="why the owning object could not be read, when it could not")
    repository_configured: bool = Field(default=False, description="gitops.repositories names this repository: "
                                        "Kubernaut can propose the change there")

    def summary(self) -> str:
        where = f"{self.repo}" + (f" path {self.path}" if self.path else "") + \
            (f" at {self.revision}" if self.revision else "") if self.repo else "repository unknown"
        sync = []
        if self.auto_sync is not None:
            sync.append("auto-sync" if self.auto_sync else "manual sync")
        if self.self_heal is not None:
            sync.append("self-heal" if self.self_heal else "no self-heal")
        return f"{self.tool} {self.app or '?'} ({where}{'; ' + ', '.join(sync) if sync else ''})"
