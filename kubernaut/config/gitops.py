"""The ``gitops`` section: how GitOps ownership is detected and where proposed changes go (issue 15).

The modes themselves (live / propose / live-and-propose per action and environment) are policy, in the
policy file (``kubernaut/orchestration/policy.yaml``, ``gitops:``); this section says how to reach the
repositories and forges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

_LABEL = r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"


class GitHubAppConfig(BaseModel):
    """A GitHub App instead of a token: its JWT (RS256, signed with the App's private key) is exchanged for an
    installation token, used for the REST calls and as the ``x-access-token`` password of git over HTTPS.

    The private key is read from a file (a mounted Secret) or an environment variable, never from the
    configuration file itself: there is deliberately no inline key field."""

    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9.]+$",
                        description="the App's id (or client id): the JWT's issuer")
    private_key_file: Path | None = None
    private_key_env: str | None = Field(default=None, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                                        description="the name of an environment variable holding the PEM key")
    installation_id: int | None = Field(default=None, ge=1, description="default: looked up for the repository "
                                        "(GET /repos/{owner}/{repo}/installation)")
    # An installation token lives an hour; it is renewed this long before its expires_at.
    refresh_before_s: float = Field(default=300.0, ge=0, le=3000)

    @model_validator(mode="after")
    def _one_key_source(self) -> GitHubAppConfig:
        if (self.private_key_file is None) == (self.private_key_env is None):
            raise ValueError("gitops.repositories[].github_app: give private_key_file or private_key_env (one)")
        return self


class RepositoryConfig(BaseModel):
    """One Git repository Kubernaut may propose changes to, and the forge that reviews them."""

    model_config = ConfigDict(extra="forbid")

    # The URL as the GitOps owner names it (Application spec.source.repoURL, GitRepository spec.url);
    # compared after normalisation (scheme, user, trailing ".git" and "/" dropped).
    url: str = Field(min_length=1, max_length=2048)
    # Where to clone and push, when not ``url`` itself (an SSH or credentialed mirror; a local server in tests).
    clone_url: str | None = Field(default=None, max_length=2048)
    forge: Literal["github", "gitlab"]
    api_url: str = Field(min_length=1, max_length=2048, description="https://api.github.com or "
                         "https://gitlab.example.com/api/v4")
    project: str = Field(min_length=1, max_length=400, pattern=r"^[A-Za-z0-9_.\-/]+$",
                         description="owner/name on GitHub, the project path on GitLab")
    # The forge token: inline (from a Secret through KUBERNAUT_GITOPS__...) or a file mounted from a Secret.
    token: SecretStr | None = None
    token_file: Path | None = None
    github_app: GitHubAppConfig | None = None  # forge github only; instead of token/token_file
    base_branch: str | None = Field(default=None, max_length=255, description="default: the revision the owner "
                                    "follows, else main")
    # Helm: the value path in the values file for a field Kubernaut changes, per container where it matters:
    # {"containers.<name>.resources.limits.memory": "resources.limits.memory", "replicas": "replicaCount",
    #  "containers.<name>.image": "image.tag"}.
    helm_values: dict[str, str] = Field(default_factory=dict, max_length=200)
    values_file: str = Field(default="values.yaml", max_length=1024)

    @model_validator(mode="after")
    def _one_token_source(self) -> RepositoryConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("gitops.repositories: give token or token_file, not both")
        if self.github_app is not None:
            if self.forge != "github":
                raise ValueError("gitops.repositories: github_app is for forge github")
            if self.token is not None or self.token_file is not None:
                raise ValueError("gitops.repositories: give github_app or a token, not both")
        return self

    def secret(self) -> str | None:
        """The token, read now (a rotated Secret file is picked up); None when none is configured or it is empty."""
        if self.token is not None:
            value = self.token.get_secret_value().strip()
        elif self.token_file is not None:
            try:
                value = self.token_file.read_text(encoding="utf-8").strip()
            except OSError:
                return None
        else:
            return None
        return value or None


class GitOpsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detect: bool = True
    # The label Argo CD tracks resources by (its ``application.instanceLabelKey``); the tracking-id annotation
    # is read whatever this says.
    argocd_instance_label: str = Field(default="app.kubernetes.io/instance", max_length=317, pattern=_LABEL)
    argocd_namespaces: list[str] = Field(default_factory=lambda: ["argocd"], min_length=1, max_length=50)
    repositories: list[RepositoryConfig] = Field(default_factory=list, max_length=200)
    author_name: str = Field(default="Kubernaut", max_length=100)
    author_email: str = Field(default="kubernaut@localhost", max_length=254)
    branch_prefix: str = Field(default="kubernaut/", max_length=50, pattern=r"^[A-Za-z0-9._/-]*$")
    # How often a proposal's PR is looked at, and how long a merged change may take to reach the cluster.
    poll_interval_s: float = Field(default=30.0, ge=0.1, le=3600)
    sync_timeout_s: float = Field(default=900.0, ge=1, le=7 * 86400)
    # live-and-propose: the owner's self-heal is paused for the live fix until the PR is merged and synced, or
    # at most this long (then resumed: the controller puts Git's value back while the PR waits).
    self_heal_pause_s: float = Field(default=86400.0, ge=1, le=30 * 86400)
    # live-and-propose under a Flux Kustomization: ``object`` pauses only the fixed object (kustomize-controller's
    # kustomize.toolkit.fluxcd.io/reconcile=disabled annotation; the Kustomization keeps applying the rest),
    # ``kustomization`` suspends the whole Kustomization. A HelmRelease is always suspended (no per-object switch).
    flux_pause: Literal["object", "kustomization"] = "object"
    # An open PR nobody merges or closes escalates after this.
    review_timeout_s: float = Field(default=7 * 86400.0, ge=1, le=90 * 86400)
    # A forge or Git server outage: tries with exponential backoff before the workflow escalates.
    max_attempts: int = Field(default=5, ge=1, le=50)
    request_timeout_s: float = Field(default=15.0, gt=0, le=300)
    work_dir: Path | None = None  # clones; None: a temporary directory per proposal
