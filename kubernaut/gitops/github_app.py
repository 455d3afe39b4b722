"""GitHub App credentials: the App's JWT (RS256 with its private key, PyJWT) exchanged at
``POST /app/installations/{id}/access_tokens`` for an installation token, which is what the REST calls and git
over HTTPS (``x-access-token``) then use.

The token is kept until ``refresh_before_s`` before its ``expires_at`` and exchanged again after a 401 (the
forge client asks, kubernaut/gitops/forge.py). Fail closed: an unreadable or invalid key, an unknown
installation or a refused exchange is ``ForgeError(auth=True)`` with the reason; nothing is ever sent without
a token. The installation is looked up for the repository (``GET /repos/{owner}/{repo}/installation``) when
not configured.

One ``InstallationTokens`` per App, installation and API, shared by every proposal of this process
(``installation_tokens``): a workflow step that runs every few seconds does not exchange every time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt

from kubernaut.config.gitops import GitHubAppConfig
from kubernaut.gitops.forge import GITHUB_HEADERS, ForgeError, StaticToken, _Http, github_repo_path

# GitHub refuses an App JWT that lives longer than 10 minutes; iat is set back a minute for clock drift.
_JWT_LIFETIME_S = 540
_JWT_BACKDATE_S = 60


def private_key(app: GitHubAppConfig) -> str:
    """The App's PEM private key, read now (a rotated Secret is picked up)."""
    if app.private_key_file is not None:
        try:
            key = app.private_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ForgeError(f"GitHub App {app.app_id}: cannot read its private key from {app.private_key_file} "
                             f"({exc.strerror or type(exc).__name__}): refusing to propose", auth=True) from None
        where = str(app.private_key_file)
    else:
        key = (os.environ.get(app.private_key_env or "") or "").strip()
        where = f"${app.private_key_env}"
    if not key:
        raise ForgeError(f"GitHub App {app.app_id}: no private key in {where}: refusing to propose", auth=True)
    return key


def app_jwt(app: GitHubAppConfig, key: str, now: float | None = None) -> str:
    issued = int(time.time() if now is None else now) - _JWT_BACKDATE_S
    try:
        return jwt.encode({"iat": issued, "exp": issued + _JWT_LIFETIME_S, "iss": app.app_id}, key,
                          algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError) as exc:  # not an RSA private key in PEM
        raise ForgeError(f"GitHub App {app.app_id}: its private key cannot sign a JWT ({type(exc).__name__}): "
                         "refusing to propose", auth=True) from None


def _expiry(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class InstallationTokens:
    """The installation token of one App installation: ``token()`` (cached), ``refresh()`` (after a 401)."""

    def __init__(self, app: GitHubAppConfig, api_url: str, project: str, timeout_s: float = 15.0, *,
                 transport: Any = None, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.api_url = api_url
        self.project = project
        self.exchanges = 0  # how many tokens were asked for (the cache's effect, for tests and logs)
        self._timeout_s = timeout_s
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def _app_http(self) -> _Http:
        return _Http(self.api_url, StaticToken(app_jwt(self.app, private_key(self.app))),
                     lambda t: {"Authorization": f"Bearer {t}"}, GITHUB_HEADERS, self._timeout_s, self._transport)

    def _exchange(self) -> None:
        http = self._app_http()
        try:
            installation = self.app.installation_id
            if installation is None:
                doc = http.call("GET", f"{github_repo_path(self.project)}/installation")
                installation = int(doc.get("id") or 0) or None
                if installation is None:
                    raise ForgeError(f"GitHub App {self.app.app_id} is not installed on {self.project}", auth=True)
            doc = http.call("POST", f"/app/installations/{installation}/access_tokens")
        except ForgeError as exc:
            if exc.auth or exc.status == 404:
                raise ForgeError(f"GitHub App {self.app.app_id}: the installation token was refused ({exc}): "
                                 "refusing to propose", status=exc.status, auth=True) from None
            raise
        finally:
            http.close()
        token = str(doc.get("token") or "")
        if not token:
            raise ForgeError(f"GitHub App {self.app.app_id}: the exchange returned no token", auth=True)
        self.exchanges += 1
        # Without a readable expires_at the token is used for this call only.
        self._token, self._expires_at = token, _expiry(doc.get("expires_at")) or 0.0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self.app.refresh_before_s:
                self._exchange()
            assert self._token is not None
            return self._token

    def refresh(self) -> str | None:
        with self._lock:
            self._token = None
            self._exchange()
            return self._token


_SHARED: dict[tuple[Any, ...], InstallationTokens] = {}
_SHARED_LOCK = threading.Lock()


def installation_tokens(app: GitHubAppConfig, api_url: str, project: str, timeout_s: float = 15.0
                        ) -> InstallationTokens:
    key = (api_url.rstrip("/"), app.app_id, app.installation_id, project, str(app.private_key_file),
           app.private_key_env, app.refresh_before_s)
    with _SHARED_LOCK:
        tokens = _SHARED.get(key)
        if tokens is None:
            tokens = _SHARED[key] = InstallationTokens(app, api_url, project, timeout_s)
        return tokens
