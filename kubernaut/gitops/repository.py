"""Clone, branch, commit and push with GitPython (the git CLI underneath), and nothing else.

Credentials never reach a command line or a log: an HTTPS token travels in an ``http.extraHeader`` given
through the environment (GIT_CONFIG_*), and errors are re-raised with the token scrubbed.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from git import Actor, GitCommandError, Repo


class GitError(RuntimeError):
    """A Git operation failed; ``transient`` when the server may answer later (unreachable, timeout)."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


_TRANSIENT = ("Could not resolve host", "Connection refused", "timed out", "unable to access", "Connection reset",
              "early EOF", "remote end hung up")


def _env(url: str, token: str | None, user: str) -> dict[str, str]:
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    if token and url.startswith("https://"):
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}"})
    return env


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


class Checkout:
    """A working copy of one branch of a remote, in a directory this object owns."""

    def __init__(self, repo: Repo, url: str, token: str | None, user: str) -> None:
        self.repo = repo
        self.url = url
        self._env = _env(url, token, user)
        self._token = token

    @property
    def root(self) -> Path:
        return Path(self.repo.working_tree_dir or ".")

    def _git(self, *args: str) -> str:
        try:
            with self.repo.git.custom_environment(**self._env):
                return self.repo.git.execute(["git", *args])  # type: ignore[call-overload,no-any-return]
        except GitCommandError as exc:
            detail = _scrub(f"{exc.stderr or ''} {exc.stdout or ''}".strip(), self._token)
            raise GitError(f"git {args[0]}: {detail[:500]}",
                           transient=any(t in detail for t in _TRANSIENT)) from None

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def branch(self, name: str) -> None:
        self._git("checkout", "-B", name)

    def commit(self, message: str, author_name: str, author_email: str) -> str:
        self.repo.git.add(A=True)
        actor = Actor(author_name, author_email)
        return self.repo.index.commit(message, author=actor, committer=actor).hexsha

    def push(self, branch: str, *, force: bool = False) -> None:
        self._git("push", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{branch}")

    def revert(self, commit: str, message: str, author_name: str, author_email: str) -> str:
        self._git("-c", f"user.name={author_name}", "-c", f"user.email={author_email}", "revert", "--no-edit", commit)
        if message:
            self._git("-c", f"user.name={author_name}", "-c", f"user.email={author_email}", "commit", "--amend",
                      "-m", message)
        return self.head()

    def remote_head(self, branch: str) -> str | None:
        out = self._git("ls-remote", "origin", f"refs/heads/{branch}")
        return out.split()[0] if out.strip() else None


@contextmanager
def checkout(url: str, branch: str, *, token: str | None = None, user: str = "x-access-token",
             work_dir: Path | None = None, depth: int | None = None) -> Iterator[Checkout]:
    """A fresh clone of ``branch`` (removed afterwards)."""
    base = Path(tempfile.mkdtemp(prefix="kubernaut-gitops-", dir=str(work_dir) if work_dir else None))
    try:
        env = {**os.environ, **_env(url, token, user)}
        args = ["--branch", branch, "--single-branch"] + (["--depth", str(depth)] if depth else [])
        try:
            repo = Repo.clone_from(url, base / "repo", env=env, multi_options=args)
        except GitCommandError as exc:
            detail = _scrub(f"{exc.stderr or ''}".strip(), token)
            raise GitError(f"git clone of branch {branch}: {detail[:500]}",
                           transient=any(t in detail for t in _TRANSIENT)) from None
        yield Checkout(repo, url, token, user)
    finally:
        shutil.rmtree(base, ignore_errors=True)
