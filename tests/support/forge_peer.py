"""A local HTTP peer speaking the few GitHub and GitLab REST endpoints a GitOps proposal uses (create PR/MR,
read its state, comment, close), over the real bare repository of tests/support/git_server.py: mergeability
is ``git merge-tree`` of the branches, a merge is a real merge commit on the base branch.

With ``app`` it is also GitHub's App side: the App's JWT is verified with the App's public key (RS256, PyJWT:
signature, issuer, ``exp``/``iat``, at most 10 minutes), exchanged for expiring installation tokens
(``POST /app/installations/{id}/access_tokens``, ``GET /repos/{o}/{r}/installation``), and the repository
endpoints take those tokens only while they have not expired."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt


@dataclass
class Change:
    number: int
    head: str
    base: str
    title: str
    body: str
    state: str = "open"  # open | closed | merged
    closed_by: str | None = None
    merged_by: str | None = None
    merge_commit: str | None = None
    comments: list[str] = field(default_factory=list)


@dataclass
class GitHubApp:
    """The App as GitHub knows it: its id, its public key, the installation on the peer's repository."""

    app_id: str
    public_key: str  # PEM
    installation_id: int = 4242
    token_ttl_s: float = 3600.0


def _git(bare: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"GIT_AUTHOR_NAME": "forge", "GIT_AUTHOR_EMAIL": "forge@example.com", "GIT_COMMITTER_NAME": "forge",
           "GIT_COMMITTER_EMAIL": "forge@example.com", "PATH": "/usr/bin:/bin", "HOME": str(bare)}
    return subprocess.run(["git", *args], cwd=bare, env=env, capture_output=True, text=True)


class ForgePeer:
    def __init__(self, bare: Path, token: str | None, project: str, app: GitHubApp | None = None) -> None:
        self.bare = bare
        self.token = token  # a static token the repository endpoints take (None: only installation tokens)
        self.project = project
        self.app = app
        self.installation_tokens: dict[str, float] = {}  # token → expires_at (epoch s)
        self.jwt_refusals: list[str] = []  # why each App JWT was refused
        self.refused_tokens = 0  # repository calls answered 401
        self.changes: dict[int, Change] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, doc: Any) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                peer.requests.append((method, self.path))
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else self.headers.get(
                    "PRIVATE-TOKEN", "")
                if peer.app is not None and (self.path.startswith("/app/") or self.path.endswith("/installation")):
                    status, doc = peer.app_route(method, self.path, token)
                    return self._answer(status, doc)
                if not peer.accepts(token):
                    peer.refused_tokens += 1
                    return self._answer(401, {"message": "Bad credentials"})
                status, doc = peer.route(method, self.path, body)
                self._answer(status, doc)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_PUT(self) -> None:
                self._handle("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- GitHub App: JWT → installation token -------------------------------------------------------------

    def accepts(self, token: str) -> bool:
        """A repository call's token: the static one, or an installation token that has not expired."""
        if self.token is not None and secrets.compare_digest(token, self.token):
            return True
        expires = self.installation_tokens.get(token)
        return expires is not None and time.time() < expires

    def expire_tokens(self) -> None:
        """GitHub's side of an expiry (or a revocation): the tokens issued so far stop working now."""
        for token in self.installation_tokens:
            self.installation_tokens[token] = time.time() - 1

    def _verify_jwt(self, token: str) -> str | None:
        """None when the JWT is the App's and current, else why not (GitHub answers 401)."""
        assert self.app is not None
        try:
            claims = jwt.decode(token, self.app.public_key, algorithms=["RS256"], issuer=self.app.app_id,
                                options={"require": ["exp", "iat", "iss"]}, leeway=30)
        except jwt.PyJWTError as exc:
            return f"{type(exc).__name__}: {exc}"
        if int(claims["exp"]) - int(claims["iat"]) > 660:  # GitHub: at most 10 minutes (+ the backdating)
            return "the JWT lives longer than 10 minutes"
        return None

    def app_route(self, method: str, path: str, token: str) -> tuple[int, Any]:
        assert self.app is not None
        refused = self._verify_jwt(token)
        if refused is not None:
            self.jwt_refusals.append(refused)
            return 401, {"message": "A JSON web token could not be decoded"}
        m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
        if method == "POST" and m:
            if int(m[1]) != self.app.installation_id:
                return 404, {"message": "Not Found"}
            issued = f"ghs_{secrets.token_hex(16)}"
            expires = time.time() + self.app.token_ttl_s
            self.installation_tokens[issued] = expires
            return 201, {"token": issued, "expires_at": datetime.fromtimestamp(int(expires), timezone.utc)
                         .strftime("%Y-%m-%dT%H:%M:%SZ"), "permissions": {"contents": "write",
                                                                         "pull_requests": "write"}}
        gh = re.fullmatch(r"/repos/([^/]+)/([^/]+)/installation", path)
        if method == "GET" and gh and f"{unquote(gh[1])}/{unquote(gh[2])}" == self.project:
            return 200, {"id": self.app.installation_id, "app_id": self.app.app_id}
        return 404, {"message": "Not Found"}

    # -- what a reviewer does (the test drives it) ---------------------------------------------------------

    def mergeable(self, change: Change) -> bool:
        return _git(self.bare, "merge-tree", "--write-tree", change.base, change.head).returncode == 0

    def merge(self, number: int, by: str = "carol") -> str:
        with self._lock:
            change = self.changes[number]
            tree = _git(self.bare, "merge-tree", "--write-tree", change.base, change.head)
            if tree.returncode != 0:
                raise AssertionError(f"#{number} does not merge: {tree.stdout}")
            base = _git(self.bare, "rev-parse", change.base).stdout.strip()
            head = _git(self.bare, "rev-parse", change.head).stdout.strip()
            commit = _git(self.bare, "commit-tree", tree.stdout.split()[0], "-p", base, "-p", head, "-m",
                          f"Merge #{number} from {change.head}").stdout.strip()
            _git(self.bare, "update-ref", f"refs/heads/{change.base}", commit, base)
            change.state, change.merge_commit, change.merged_by = "merged", commit, by
            return commit

    def close(self, number: int, by: str) -> None:
        self.changes[number].state, self.changes[number].closed_by = "closed", by

    # -- the REST surface -----------------------------------------------------------------------------------

    def route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        gh = re.fullmatch(r"/repos/([^/]+)/([^/]+)(/.*)?", path)
        if gh and f"{unquote(gh[1])}/{unquote(gh[2])}" == self.project:
            return self._github(method, gh[3] or "", body)
        gl = re.fullmatch(r"/projects/([^/]+)(/.*)?", path)
        if gl and unquote(gl[1]) == self.project:
            return self._gitlab(method, gl[2] or "", body)
        return 404, {"message": "Not Found"}

    def _new(self, head: str, base: str, title: str, body: str) -> Change:
        with self._lock:
            change = Change(len(self.changes) + 1, head, base, title, body)
            self.changes[change.number] = change
            return change

    def _github_pr(self, c: Change) -> dict[str, Any]:
        return {"number": c.number, "html_url": f"{self.url}/pull/{c.number}", "state": "open" if c.state == "open"
                else "closed", "merged": c.state == "merged", "merged_at": "2026-01-01T00:00:00Z"
                if c.state == "merged" else None, "head": {"ref": c.head}, "base": {"ref": c.base},
                "mergeable": self.mergeable(c) if c.state == "open" else None, "title": c.title, "body": c.body,
                "merge_commit_sha": c.merge_commit, "merged_by": {"login": c.merged_by} if c.merged_by else None}

    def _github(self, method: str, rest: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and rest == "":
            return 200, {"full_name": self.project, "permissions": {"push": True}}
        if method == "POST" and rest == "/pulls":
            return 201, self._github_pr(self._new(body["head"], body["base"], body["title"], body.get("body", "")))
        m = re.fullmatch(r"/(pulls|issues)/(\d+)(/comments)?", rest)
        if not m or int(m[2]) not in self.changes:
            return 404, {"message": "Not Found"}
        c = self.changes[int(m[2])]
        if m[3] and method == "POST":
            c.comments.append(body["body"])
            return 201, {"id": len(c.comments), "body": body["body"]}
        if m[1] == "issues" and method == "GET":
            return 200, {"number": c.number, "state": "open" if c.state == "open" else "closed",
                         "closed_by": {"login": c.closed_by} if c.closed_by else None}
        if method == "PATCH":
            if body.get("state") == "closed":
                self.close(c.number, "kubernaut-bot")
            return 200, self._github_pr(c)
        return 200, self._github_pr(c)

    def _gitlab_mr(self, c: Change) -> dict[str, Any]:
        return {"iid": c.number, "web_url": f"{self.url}/-/merge_requests/{c.number}",
                "state": {"open": "opened"}.get(c.state, c.state), "source_branch": c.head, "target_branch": c.base,
                "has_conflicts": not self.mergeable(c) if c.state == "open" else False,
                "detailed_merge_status": "mergeable" if c.state != "open" or self.mergeable(c) else "conflict",
                "closed_by": {"username": c.closed_by} if c.closed_by else None, "merge_commit_sha": c.merge_commit,
                "merged_by": {"username": c.merged_by} if c.merged_by else None}

    def _gitlab(self, method: str, rest: str, body: dict[str, Any]) -> tuple[int, Any]:
        if method == "GET" and rest == "":
            return 200, {"path_with_namespace": self.project}
        if method == "POST" and rest == "/merge_requests":
            return 201, self._gitlab_mr(self._new(body["source_branch"], body["target_branch"], body["title"],
                                                  body.get("description", "")))
        m = re.fullmatch(r"/merge_requests/(\d+)(/notes)?", rest)
        if not m or int(m[1]) not in self.changes:
            return 404, {"message": "404 Not found"}
        c = self.changes[int(m[1])]
        if m[2] and method == "POST":
            c.comments.append(body["body"])
            return 201, {"id": len(c.comments), "body": body["body"]}
        if method == "PUT" and body.get("state_event") == "close":
            self.close(c.number, "kubernaut-bot")
        return 200, self._gitlab_mr(c)
