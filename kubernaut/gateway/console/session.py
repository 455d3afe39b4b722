"""The console's browser session: an encrypted, signed cookie that carries the caller's credential.

The cookie holds the bearer credential a person signed in with (an API token, or the ID token of an OIDC
sign-in) and the session's CSRF token. Fernet (cryptography: AES-CBC with an HMAC-SHA256 over it) encrypts
and signs it with the console key, and its timestamp bounds its age: a tampered, foreign or old cookie is no
session. The credential itself is authenticated again on every request by the gateway's authentication chain,
so revoking a token ends the sessions made with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Literal, TypeVar

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "kubernaut_session"
OIDC_COOKIE = "kubernaut_oidc"  # the state of one OIDC sign-in, between the redirect and the callback
OIDC_TTL_S = 600

Model = TypeVar("Model", bound=BaseModel)


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


class Session(BaseModel):
    """``credential`` None: nobody signed in (the gateway may still know the caller: the anonymous principal
    of a loopback gateway without authentication)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    credential: str | None = Field(default=None, max_length=16_384)
    method: Literal["none", "token", "oidc"] = "none"
    csrf: str = Field(default_factory=new_csrf, min_length=32, max_length=64)

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header the REST API would get from this caller."""
        return f"Bearer {self.credential}" if self.credential else None

    def csrf_matches(self, submitted: str | None) -> bool:
        return bool(submitted) and hmac.compare_digest(self.csrf.encode(), str(submitted).encode())


class OIDCState(BaseModel):
    """One sign-in in flight: what the callback must see again (state), what the ID token must carry (nonce),
    the PKCE verifier, and where to go afterwards."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str = ""


def key_from_secret(secret: str) -> bytes:
    """32 key bytes from a configured secret (console.session_secret)."""
    return hashlib.sha256(b"kubernaut-console-session\x00" + secret.encode()).digest()


class SessionCodec:
    def __init__(self, key: bytes, ttl_s: int) -> None:
        if len(key) != 32:
            raise ValueError("the console key is 32 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self.ttl_s = ttl_s

    def seal(self, value: BaseModel) -> str:
        # Without base64's "=" padding: a cookie value with "=" is sent quoted (RFC 6265 allows it, but not every
        # client unquotes it again), so the token is kept to the characters a cookie carries as they are.
        return self._fernet.encrypt(value.model_dump_json().encode()).decode().rstrip("=")

    def open(self, cookie: str | None, model: type[Model], ttl_s: int | None = None) -> Model | None:
        """The value of a cookie this codec sealed within ``ttl_s`` (the session's by default); else None."""
        if not cookie or len(cookie) > 32_768:
            return None
        cookie = cookie.strip('"').rstrip("=")
        cookie += "=" * (-len(cookie) % 4)
        try:
            return model.model_validate_json(self._fernet.decrypt(cookie.encode(), ttl=ttl_s or self.ttl_s))
        except (InvalidToken, ValidationError, ValueError):
            return None


def is_tls(request: Request, trust_forwarded: bool) -> bool:
    """Served over TLS: by this server, or (only behind a trusted proxy) by the proxy in front of it."""
    if request.url.scheme == "https":
        return True
    return trust_forwarded and request.headers.get("x-forwarded-proto", "").split(",")[0].strip() == "https"


def cookie_path(request: Request) -> str:
    """The console's path, under the application's route prefix (Serve's root_path)."""
    return f"{request.scope.get('root_path', '').rstrip('/')}/console"


def set_cookie(response: Response, request: Request, name: str, value: str, *, max_age: int, secure: bool,
               same_site: Literal["strict", "lax"] = "strict") -> None:
    """HttpOnly (no script reads it), Secure over TLS, SameSite=Strict: a request from another site carries no
    session. Only the OIDC state is Lax: the issuer's redirect back is a navigation from another site."""
    response.set_cookie(name, value, max_age=max_age, path=cookie_path(request), secure=secure, httponly=True,
                        samesite=same_site)


def clear_cookie(response: Response, request: Request, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path=cookie_path(request), secure=secure, httponly=True, samesite="strict")
