"""A remediation proposed in Git, against a real ``git daemon`` and a local peer speaking GitHub's and GitLab's
REST APIs to the real client (kubernaut/gitops/proposal.py, forge.py, repository.py): merged, closed by a
person, base moved (conflict → re-proposed), refused credentials (nothing pushed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from kubernaut.config.gitops import GitOpsConfig, RepositoryConfig
from kubernaut.gitops import proposal
from kubernaut.gitops.changes import changes_for
from kubernaut.gitops.forge import ForgeError
from kubernaut.gitops.models import GitOpsInfo
from tests.support.forge_peer import ForgePeer
from tests.support.git_server import GitServer, git

DEPLOYMENT = """\
# Shop, deployed by Argo CD from this directory.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop
  namespace: prod
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/shop:1.0
          resources:
            limits:
              memory: 64Mi  # sized for the old cache
"""
TOKEN = "forge-token-1"


def setup(server: GitServer, name: str, forge: str, token: str = TOKEN) -> tuple[ForgePeer, GitOpsConfig,
                                                                                  RepositoryConfig]:
    server.create(name, {"apps/shop/deployment.yaml": DEPLOYMENT, "README.md": "deploy repo\n"})
    peer = ForgePeer(server.bare(name), TOKEN, f"org/{name}")
    repo = RepositoryConfig(url=f"https://git.example.com/org/{name}.git", clone_url=server.url(name), forge=forge,
                            api_url=peer.url, project=f"org/{name}", token=SecretStr(token))
    return peer, GitOpsConfig(repositories=[repo]), repo


def request(name: str, limit: str = "128Mi") -> proposal.ProposalRequest:
    info = GitOpsInfo(tool="argocd", app="shop", repo=f"https://git.example.com/org/{name}", path="apps/shop",
                      revision="main", auto_sync=True, self_heal=True, via="test")
    return proposal.ProposalRequest(
        incident_id=7, workflow_id=3, action="increase_memory_limits", target="Deployment/prod/shop",
        changes=changes_for("increase_memory_limits", "Deployment", "shop", "prod", {},
                            {"container": "app", "limit": limit}),
        gitops=info, reason="OOMKilled 4 times in 10 minutes", evidence=["pod shop-1: OOMKilled"],
        dry_run_diff="-memory: 64Mi\n+memory: 128Mi")


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_merged_proposal_then_its_revert(git_server: GitServer, forge: str) -> None:
    name = f"merged-{forge}"
    peer, config, _ = setup(git_server, name, forge)
    try:
        req = request(name)
        assert proposal.find_repository(config, req.gitops) is config.repositories[0]
        done = proposal.propose(config, config.repositories[0], req)
        assert done.pr.state == "open" and done.base == "main" and done.files == ["apps/shop/deployment.yaml"]
        pushed = git_server.show(name, done.branch, "apps/shop/deployment.yaml")
        assert pushed == DEPLOYMENT.replace("memory: 64Mi  # sized", "memory: 128Mi # sized")
        message = git("log", "-1", "--format=%B", done.branch, cwd=git_server.bare(name)).stdout
        assert "incident 7" in message and "OOMKilled" in message and "+              memory: 128Mi" in message
        assert peer.changes[done.pr.number].head == done.branch and "Server-side dry-run" in \
            peer.changes[done.pr.number].body

        merge = peer.merge(done.pr.number)
        state = proposal.state(config, config.repositories[0], done.pr.number)
        assert state.state == "merged" and state.merge_commit == merge
        assert "128Mi" in git_server.show(name, "main", "apps/shop/deployment.yaml")

        revert = proposal.revert(config, config.repositories[0], done.model_copy(update={"pr": state}),
                                 "verification failed after the sync")
        assert revert.state == "open" and revert.number != done.pr.number
        assert git_server.show(name, revert.head, "apps/shop/deployment.yaml") == DEPLOYMENT
    finally:
        peer.stop()


@pytest.mark.parametrize("forge", ["github", "gitlab"])
def test_closed_by_a_person_says_who(git_server: GitServer, forge: str) -> None:
    name = f"closed-{forge}"
    peer, config, repo = setup(git_server, name, forge)
    try:
        done = proposal.propose(config, repo, request(name))
        peer.close(done.pr.number, by="alice")
        state = proposal.state(config, repo, done.pr.number)
        assert state.state == "closed" and state.closed_by == "alice"
    finally:
        peer.stop()


def test_base_moved_conflict_is_reproposed_on_the_new_base(git_server: GitServer) -> None:
    name = "conflict"
    peer, config, repo = setup(git_server, name, "github")
    try:
        req = request(name)
        done = proposal.propose(config, repo, req)
        git_server.commit_on(name, "main", "apps/shop/deployment.yaml",
                             DEPLOYMENT.replace("memory: 64Mi  # sized", "memory: 96Mi  # sized"), "someone else")
        assert proposal.state(config, repo, done.pr.number).mergeable is False
        again = proposal.repropose(config, repo, req, done)
        assert again.pr.mergeable is True and again.branch == done.branch and again.commit != done.commit
        assert "moved" in peer.changes[done.pr.number].comments[0]
        peer.merge(done.pr.number)
        assert "memory: 128Mi # sized" in git_server.show(name, "main", "apps/shop/deployment.yaml")
    finally:
        peer.stop()


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_refused_or_missing_credentials_push_nothing(git_server: GitServer, token: str) -> None:
    name = f"auth-{token or 'none'}"
    peer, config, repo = setup(git_server, name, "github", token=token)
    try:
        with pytest.raises(ForgeError) as refused:
            proposal.propose(config, repo, request(name))
        assert refused.value.auth and not refused.value.transient
        branches = git("branch", "--list", cwd=git_server.bare(name)).stdout.split()
        assert branches == ["*", "main"] and not peer.changes
    finally:
        peer.stop()


def test_manifest_not_found_is_said_and_nothing_is_pushed(git_server: GitServer, tmp_path: Path) -> None:
    name = "layout"
    peer, config, repo = setup(git_server, name, "github")
    try:
        req = request(name).model_copy(update={"gitops": request(name).gitops.model_copy(update={"path": "nowhere"})})
        with pytest.raises(proposal.ManifestNotFound):
            proposal.propose(config, repo, req)
        assert git("branch", "--list", cwd=git_server.bare(name)).stdout.split() == ["*", "main"]
    finally:
        peer.stop()
