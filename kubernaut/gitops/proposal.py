"""A remediation as a change in Git: clone the branch the owner follows, edit the manifest, commit on a new
branch with the incident, evidence and dry-run diff in the message, push, open a pull/merge request. Also
what follows it: re-propose on a moved base (conflict), and the revert of a merged proposal.

Blocking (git and HTTP): the orchestrator calls these in a worker thread.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from kubernaut.config.gitops import GitOpsConfig, RepositoryConfig
from kubernaut.gitops import manifests
from kubernaut.gitops.changes import FieldChange
from kubernaut.gitops.detect import normalise_url
from kubernaut.gitops.forge import Credentials, Forge, PullRequest, StaticToken, forge_for
from kubernaut.gitops.github_app import installation_tokens
from kubernaut.gitops.manifests import FileEdit, ManifestNotFound
from kubernaut.gitops.models import GitOpsInfo
from kubernaut.gitops.repository import checkout

_MAX_DIFF = 20_000


class ProposalRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    incident_id: int
    workflow_id: int
    action: str
    target: str  # "Kind/ns/name", for people
    changes: list[FieldChange]
    gitops: GitOpsInfo
    reason: str = Field(default="", max_length=2000)
    evidence: list[str] = Field(default_factory=list)
    dry_run_diff: str | None = None


class Proposed(BaseModel):
    model_config = ConfigDict(frozen=True)

    repository: str
    branch: str
    base: str
    commit: str
    files: list[str]
    diff: str
    pr: PullRequest


normalise = normalise_url


def find_repository(config: GitOpsConfig, info: GitOpsInfo) -> RepositoryConfig | None:
    if not info.repo:
        return None
    wanted = normalise(info.repo)
    return next((r for r in config.repositories if normalise(r.url) == wanted), None)


def _base(repo: RepositoryConfig, info: GitOpsInfo) -> str:
    if repo.base_branch:
        return repo.base_branch
    rev = info.revision or ""
    # A commit SHA or HEAD is not a branch a PR can target.
    return "main" if not rev or rev == "HEAD" or re.fullmatch(r"[0-9a-f]{7,40}", rev) else rev


def credentials(config: GitOpsConfig, repo: RepositoryConfig) -> Credentials:
    """The repository's token, or its GitHub App's installation token; refused (ForgeError) when neither is
    usable: nothing is pushed or asked anonymously."""
    if repo.github_app is not None:
        return installation_tokens(repo.github_app, repo.api_url, repo.project, config.request_timeout_s)
    return StaticToken(repo.secret())


def _forge(config: GitOpsConfig, repo: RepositoryConfig) -> Forge:
    creds = credentials(config, repo)
    return forge_for(repo.forge, repo.api_url, repo.project,
                     creds if repo.github_app is not None else creds.token(), config.request_timeout_s)


def _git_token(config: GitOpsConfig, repo: RepositoryConfig) -> str:
    """The password of git over HTTPS: the same token the forge calls use (an App's: the cached, checked one)."""
    return credentials(config, repo).token()


def edits_for(root: Path, repo: RepositoryConfig, info: GitOpsInfo, changes: list[FieldChange]) -> list[FileEdit]:
    """Helm values when a mapping is configured and the owner deploys a chart, else the manifests."""
    path = (info.path or ".").strip("/") or "."
    helm = repo.helm_values and (info.tool == "helm" or info.value_files or (root / path / repo.values_file).is_file())
    if helm:
        values = info.value_files[0] if info.value_files else repo.values_file
        return manifests.edit_helm_values(root, str(Path(path) / values), repo.helm_values, changes)
    return manifests.edit_manifests(root, path, changes)


def _message(req: ProposalRequest, diff: str) -> tuple[str, str]:
    title = f"kubernaut: {req.action} on {req.target} (incident {req.incident_id})"
    lines = [f"Incident {req.incident_id}, workflow {req.workflow_id}: {req.action} on {req.target}.", ""]
    if req.reason:
        lines += ["Why:", req.reason, ""]
    if req.evidence:
        lines += ["Evidence:", *[f"- {e}" for e in req.evidence[:10]], ""]
    lines += [f"Owner: {req.gitops.summary()}", "", "Change in Git:", "```diff", diff[:_MAX_DIFF], "```"]
    if req.dry_run_diff:
        lines += ["", "Server-side dry-run of the same change on the live object:", "```diff",
                  req.dry_run_diff[:_MAX_DIFF], "```"]
    return title, "\n".join(lines)


def branch_name(config: GitOpsConfig, req: ProposalRequest) -> str:
    return f"{config.branch_prefix}incident-{req.incident_id}-wf{req.workflow_id}-{req.action.replace('_', '-')}"


def _commit_edit(config: GitOpsConfig, repo: RepositoryConfig, req: ProposalRequest, base: str, branch: str
                 ) -> tuple[str, list[str], str, str, str]:
    """Clone ``base``, edit, commit on ``branch``, push (forced: the branch is ours).

    Returns (commit, files, diff, title, body)."""
    token = _git_token(config, repo)
    user = "oauth2" if repo.forge == "gitlab" else "x-access-token"
    with checkout(repo.clone_url or repo.url, base, token=token, user=user, work_dir=config.work_dir) as co:
        edits = edits_for(co.root, repo, req.gitops, req.changes)
        if not edits:
            raise ManifestNotFound("the repository already declares these values: nothing to propose")
        manifests.apply(co.root, edits)
        diff = "".join(e.diff() for e in edits)
        title, body = _message(req, diff)
        co.branch(branch)
        commit = co.commit(f"{title}\n\n{body}", config.author_name, config.author_email)
        co.push(branch, force=True)
        return commit, [e.path for e in edits], diff, title, body


def propose(config: GitOpsConfig, repo: RepositoryConfig, req: ProposalRequest) -> Proposed:
    """The whole proposal. Credentials are checked with the forge before anything is pushed."""
    forge = _forge(config, repo)
    forge.check()
    base = _base(repo, req.gitops)
    branch = branch_name(config, req)
    commit, files, diff, title, body = _commit_edit(config, repo, req, base, branch)
    pr = forge.create(branch, base, title, body)
    return Proposed(repository=repo.url, branch=branch, base=base, commit=commit, files=files, diff=diff, pr=pr)


def state(config: GitOpsConfig, repo: RepositoryConfig, number: int) -> PullRequest:
    return _forge(config, repo).get(number)


def repropose(config: GitOpsConfig, repo: RepositoryConfig, req: ProposalRequest, proposed: Proposed) -> Proposed:
    """The base moved under the PR and it no longer merges: redo the edit on the new base (a rebase by
    construction), force-push the same branch, say so on the PR."""
    commit, files, diff, _, _ = _commit_edit(config, repo, req, proposed.base, proposed.branch)
    forge = _forge(config, repo)
    forge.comment(proposed.pr.number, f"Kubernaut: {proposed.base} moved and this change no longer merged; it was "
                  f"made again on the new {proposed.base} ({commit[:12]}).")
    pr = forge.get(proposed.pr.number)
    return proposed.model_copy(update={"commit": commit, "files": files, "diff": diff, "pr": pr})


def revert(config: GitOpsConfig, repo: RepositoryConfig, proposed: Proposed, why: str) -> PullRequest:
    """Rollback of a merged proposal: a pull request reverting its merge (never a live inverse)."""
    forge = _forge(config, repo)
    forge.check()
    merged = proposed.pr.merge_commit or proposed.commit
    branch = f"{proposed.branch}-revert"
    token = _git_token(config, repo)
    user = "oauth2" if repo.forge == "gitlab" else "x-access-token"
    with checkout(repo.clone_url or repo.url, proposed.base, token=token, user=user, work_dir=config.work_dir) as co:
        co.branch(branch)
        parents = co.repo.commit(merged).parents
        args = ["-m", "1"] if len(parents) > 1 else []
        co._git("-c", f"user.name={config.author_name}", "-c", f"user.email={config.author_email}", "revert",
                "--no-edit", *args, merged)
        co.push(branch, force=True)
    title = f"Revert kubernaut proposal #{proposed.pr.number}"
    return forge.create(branch, proposed.base, title, f"{why}\n\nReverts {proposed.pr.url or proposed.pr.number}.")


def close(config: GitOpsConfig, repo: RepositoryConfig, number: int, why: str) -> None:
    forge = _forge(config, repo)
    forge.comment(number, why)
    forge.close(number)
