"""Pull requests (GitHub) and merge requests (GitLab) over their REST APIs, with httpx: create, read state,
comment, close. Only the few endpoints a proposal needs.

A missing token is refused before any request (fail closed); a 401 gets one retry with a new token when the
credentials can make one (a GitHub App's installation token); 401/403 are ``ForgeError(auth=True)``, never
retried; 429/5xx and transport errors are ``transient`` (the caller retries with backoff, then escalates).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

State = Literal["open", "merged", "closed"]


class ForgeError(RuntimeError):
    def __init__(self, message: str, *, status: int | None = None, transient: bool = False, auth: bool = False):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.auth = auth


class PullRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    url: str
    state: State
    head: str
    mergeable: bool | None = None  # None: the forge has not computed it (yet)
    closed_by: str | None = None
    merged_by: str | None = None
    merge_commit: str | None = None


class Forge(Protocol):
    def check(self) -> None: ...
    def create(self, head: str, base: str, title: str, body: str) -> PullRequest: ...
    def get(self, number: int) -> PullRequest: ...
    def comment(self, number: int, body: str) -> None: ...
    def close(self, number: int) -> None: ...


class Credentials(Protocol):
    """Where a forge token comes from: a configured token, or a GitHub App's installation token
    (kubernaut/gitops/github_app.py)."""

    def token(self) -> str: ...

    def refresh(self) -> str | None:
        """After a 401: a new token to try once more, or None when there is no other to get."""
        ...


class StaticToken:
    """A configured token. Missing or empty is refused here, before any request (fail closed)."""

    def __init__(self, token: str | None) -> None:
        self._token = _need(token)

    def token(self) -> str:
        return self._token

    def refresh(self) -> str | None:
        return None


class _Http:
    def __init__(self, api_url: str, credentials: Credentials, auth: Callable[[str], dict[str, str]],
                 headers: dict[str, str], timeout_s: float, transport: Any = None) -> None:
        self._credentials = credentials
        self._auth = auth
        self._client = httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=timeout_s,
                                    transport=transport, follow_redirects=False)

    def _send(self, method: str, path: str, json: Any, token: str) -> httpx.Response:
        try:
            return self._client.request(method, path, json=json, headers=self._auth(token))
        except httpx.HTTPError as exc:
            raise ForgeError(f"{method} {path}: {type(exc).__name__}: {exc}", transient=True) from None

    def call(self, method: str, path: str, json: Any = None) -> Any:
        response = self._send(method, path, json, self._credentials.token())
        if response.status_code == 401:
            # An installation token may have been revoked or expired early: one new token, one more try.
            fresh = self._credentials.refresh()
            if fresh is not None:
                response = self._send(method, path, json, fresh)
        if response.status_code in (401, 403):
            raise ForgeError(f"{method} {path}: {response.status_code}: the forge refused the credentials "
                             f"({_message(response)})", status=response.status_code, auth=True)
        if response.status_code == 429 or response.status_code >= 500:
            raise ForgeError(f"{method} {path}: {response.status_code} {_message(response)}",
                             status=response.status_code, transient=True)
        if response.status_code >= 400:
            raise ForgeError(f"{method} {path}: {response.status_code} {_message(response)}",
                             status=response.status_code)
        return response.json() if response.content else {}

    def close(self) -> None:
        self._client.close()


def _message(response: httpx.Response) -> str:
    try:
        doc = response.json()
        return str(doc.get("message") or doc.get("error") or "")[:300]
    except ValueError:
        return response.text[:300]


def _need(token: str | None) -> str:
    if not token:
        raise ForgeError("no forge token configured (gitops.repositories[].token or token_file): refusing to "
                         "propose", auth=True)
    return token


GITHUB_HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}


def github_repo_path(project: str) -> str:
    return "/repos/" + "/".join(quote(p, safe="") for p in project.split("/", 1))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class GitHub:
    def __init__(self, api_url: str, project: str, token: str | Credentials | None, timeout_s: float = 15.0,
                 transport: Any = None) -> None:
        self._repo = github_repo_path(project)
        credentials = token if token is not None and not isinstance(token, str) else StaticToken(token)
        self._http = _Http(api_url, credentials, _bearer, GITHUB_HEADERS, timeout_s, transport)

    def check(self) -> None:
        doc = self._http.call("GET", self._repo)
        if doc.get("permissions") is not None and not (doc["permissions"].get("push")):
            raise ForgeError(f"the token may not push to {self._repo}", status=403, auth=True)

    def _pr(self, doc: dict[str, Any], closed_by: str | None = None) -> PullRequest:
        state: State = "merged" if doc.get("merged") or doc.get("merged_at") else \
            "open" if doc.get("state") == "open" else "closed"
        return PullRequest(number=int(doc["number"]), url=str(doc.get("html_url") or ""), state=state,
                           head=str((doc.get("head") or {}).get("ref") or ""), mergeable=doc.get("mergeable"),
                           closed_by=closed_by, merge_commit=doc.get("merge_commit_sha") if state == "merged" else None,
                           merged_by=((doc.get("merged_by") or {}).get("login")) if state == "merged" else None)

    def create(self, head: str, base: str, title: str, body: str) -> PullRequest:
        return self._pr(self._http.call("POST", f"{self._repo}/pulls",
                                        {"head": head, "base": base, "title": title, "body": body}))

    def get(self, number: int) -> PullRequest:
        doc = self._http.call("GET", f"{self._repo}/pulls/{number}")
        closed_by = None
        if doc.get("state") == "closed" and not (doc.get("merged") or doc.get("merged_at")):
            issue = self._http.call("GET", f"{self._repo}/issues/{number}")  # PRs are issues: it says who closed
            closed_by = ((issue.get("closed_by") or {}).get("login"))
        return self._pr(doc, closed_by)

    def comment(self, number: int, body: str) -> None:
        self._http.call("POST", f"{self._repo}/issues/{number}/comments", {"body": body})

    def close(self, number: int) -> None:
        self._http.call("PATCH", f"{self._repo}/pulls/{number}", {"state": "closed"})


class GitLab:
    def __init__(self, api_url: str, project: str, token: str | None, timeout_s: float = 15.0,
                 transport: Any = None) -> None:
        self._project = f"/projects/{quote(project, safe='')}"
        self._http = _Http(api_url, StaticToken(token), lambda t: {"PRIVATE-TOKEN": t}, {}, timeout_s, transport)

    def check(self) -> None:
        self._http.call("GET", self._project)

    def _mr(self, doc: dict[str, Any]) -> PullRequest:
        raw = doc.get("state")
        state: State = "merged" if raw == "merged" else "open" if raw in ("opened", "locked") else "closed"
        status = doc.get("detailed_merge_status") or doc.get("merge_status")
        mergeable = None if status in (None, "unchecked", "checking", "preparing") else \
            not (doc.get("has_conflicts") or status in ("cannot_be_merged", "conflict", "broken_status"))
        return PullRequest(number=int(doc["iid"]), url=str(doc.get("web_url") or ""), state=state,
                           head=str(doc.get("source_branch") or ""), mergeable=mergeable,
                           closed_by=((doc.get("closed_by") or {}).get("username")) if state == "closed" else None,
                           merge_commit=doc.get("merge_commit_sha") if state == "merged" else None,
                           merged_by=((doc.get("merged_by") or {}).get("username")) if state == "merged" else None)

    def create(self, head: str, base: str, title: str, body: str) -> PullRequest:
        return self._mr(self._http.call("POST", f"{self._project}/merge_requests", {
            "source_branch": head, "target_branch": base, "title": title, "description": body}))

    def get(self, number: int) -> PullRequest:
        return self._mr(self._http.call("GET", f"{self._project}/merge_requests/{number}"))

    def comment(self, number: int, body: str) -> None:
        self._http.call("POST", f"{self._project}/merge_requests/{number}/notes", {"body": body})

    def close(self, number: int) -> None:
        self._http.call("PUT", f"{self._project}/merge_requests/{number}", {"state_event": "close"})


def forge_for(kind: str, api_url: str, project: str, token: str | Credentials | None, timeout_s: float = 15.0
              ) -> Forge:
    if kind == "github":
        return GitHub(api_url, project, token, timeout_s)
    if not isinstance(token, (str, type(None))):
        raise ForgeError(f"{kind}: only a token is supported, not {type(token).__name__}", auth=True)
    if kind == "gitlab":
        return GitLab(api_url, project, token, timeout_s)
    raise ForgeError(f"unknown forge {kind!r}")
