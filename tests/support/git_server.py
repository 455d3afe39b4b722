"""A real Git server for the GitOps tests: a bare repository served by ``git daemon`` (Debian's git) on
loopback, pushed to and read with the git CLI."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "test",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(cwd or Path.cwd()), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=check, capture_output=True, text=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GitServer:
    base: Path
    port: int
    process: subprocess.Popen[bytes]

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def bare(self, name: str) -> Path:
        return self.base / f"{name}.git"

    def create(self, name: str, files: dict[str, str], branch: str = "main") -> Path:
        """A bare repository whose ``branch`` holds ``files`` in one commit."""
        bare = self.bare(name)
        git("init", "--bare", "-b", branch, str(bare))
        work = self.base / f"{name}-seed"
        git("init", "-b", branch, str(work))
        for rel, text in files.items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            (work / rel).write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-m", "initial", cwd=work)
        git("push", str(bare), f"{branch}:{branch}", cwd=work)
        return bare

    def show(self, name: str, ref: str, path: str) -> str:
        return git("show", f"{ref}:{path}", cwd=self.bare(name)).stdout

    def commit_on(self, name: str, branch: str, path: str, text: str, message: str) -> str:
        """Someone else's commit on ``branch`` (moves the base under an open PR)."""
        work = self.base / f"{name}-other-{time.monotonic_ns()}"
        git("clone", "-b", branch, str(self.bare(name)), str(work))
        (work / path).write_text(text)
        git("commit", "-am", message, cwd=work)
        git("push", "origin", branch, cwd=work)
        return git("rev-parse", "HEAD", cwd=work).stdout.strip()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_git_daemon(base: Path) -> GitServer:
    base.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all", "--enable=receive-pack",
         "--listen=127.0.0.1", f"--port={port}", str(base)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return GitServer(base, port, process)
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"git daemon exited with {process.returncode}") from None
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("git daemon did not listen within 10 s")
