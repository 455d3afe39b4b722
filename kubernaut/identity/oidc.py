"""OIDC/JWT bearer tokens (issue 12, method 3): SSO users of the console, verified locally with PyJWT.

A token is claimed when it is a JWT whose (unverified) ``iss`` is the configured issuer; anything else is "not
mine" (the chain tries the next method). A claimed token must then hold up entirely or it is a 401 whose
reason says nothing more than "invalid":

- the header's ``alg`` is one of ``OIDCConfig.algorithms`` (asymmetric only: ``none`` and HS* never verify,
  so a token "signed" with the issuer's public key as an HMAC secret is refused before any key is used);
- the key is the JWKS entry with the header's ``kid``, of the key type that algorithm needs, and whose own
  ``alg`` (when it has one) is the header's;
- signature, ``iss``, ``aud`` (one of ``OIDCConfig.audience``), ``exp``, ``nbf`` and ``iat`` with
  ``leeway_s`` of clock skew; ``exp``, ``iat``, ``iss``, ``aud`` and the username claim are required.

Keys come from ``jwks_url`` (or the issuer's discovery document) over HTTPS, are kept for ``jwks_refresh_s``
and fetched again early, at most once per ``jwks_min_refetch_s``, when a token names a kid we do not have
(the issuer rotated its key). When the keys are due and the issuer cannot be reached, the answer is
:class:`AuthUnavailable` (503): a key the issuer has withdrawn is not trusted on the strength of an old copy.

Roles and approval namespaces come from the groups claim through ``group_roles`` and
``group_approve_namespaces`` (plus ``default_roles``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from pydantic import ValidationError

from kubernaut.config.auth import OIDCConfig, require_https
from kubernaut.models.principal import AuthUnavailable, Principal, Role

logger = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 16 * 1024
MAX_DOCUMENT_BYTES = 1024 * 1024  # a JWKS or discovery document larger than this is not one
INVALID = "invalid or expired credentials"
# The key type each algorithm family verifies with.
_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class OIDCAuthenticator:
    """:class:`~kubernaut.models.principal.Authenticator` for the JWTs of one OIDC issuer."""

    def __init__(self, config: OIDCConfig, *, http: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not config.enabled:
            raise ValueError("OIDCAuthenticator needs an enabled OIDCConfig (issuer, audience)")
        self.config = config
        self._http = http
        self._clock = clock
        self._keys: dict[str | None, dict[str, Any]] = {}  # kid → JWK
        self._fetched_at: float | None = None  # last successful fetch: the keys' age
        self._tried_at: float | None = None  # last attempt: the rate limit of early refetches
        self._attempts = 0
        self._jwks_url: str | None = config.jwks_url
        self._lock = asyncio.Lock()
        self.fetches = 0  # JWKS documents fetched (rotation and its rate limit are observable)

    def claims(self, bearer: str) -> bool:
        try:
            payload = jwt.decode(bearer, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return payload.get("iss") == self.config.issuer

    async def authenticate(self, bearer: str) -> Principal | None:
        if not bearer or not self.claims(bearer):
            return None
        if len(bearer.encode("utf-8", errors="replace")) > MAX_TOKEN_BYTES:
            raise PermissionError(INVALID)
        try:
            header = jwt.get_unverified_header(bearer)
        except jwt.PyJWTError:
            raise PermissionError(INVALID) from None
        alg, kid = header.get("alg"), header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise PermissionError(INVALID)
        if alg not in self.config.algorithms:
            logger.info("OIDC token refused: algorithm %r is not allowed", alg)
            raise PermissionError(INVALID)
        jwk = await self._key(kid)
        key = _verification_key(jwk, alg)
        if key is None:
            raise PermissionError(INVALID)
        username_claim = self.config.username_claim
        try:
            claims = jwt.decode(
                bearer, key, algorithms=[alg], audience=list(self.config.audience), issuer=self.config.issuer,
                leeway=self.config.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", username_claim]},
            )
        except jwt.PyJWTError as exc:
            logger.info("OIDC token refused: %s", type(exc).__name__)
            raise PermissionError(INVALID) from None
        return self._principal(claims)

    # -- claims → principal -----------------------------------------------------------------------

    def _principal(self, claims: dict[str, Any]) -> Principal:
        raw_groups = claims.get(self.config.groups_claim) or []
        if isinstance(raw_groups, str):
            raw_groups = [raw_groups]
        if not isinstance(raw_groups, list):
            raise PermissionError(INVALID)
        groups = tuple(g for g in raw_groups if isinstance(g, str))
        roles: set[Role] = set(self.config.default_roles)
        namespaces: list[str] = []
        for group in groups:
            roles.update(self.config.group_roles.get(group, ()))
            namespaces += [n for n in self.config.group_approve_namespaces.get(group, ()) if n not in namespaces]
        name = claims[self.config.username_claim]
        if not isinstance(name, str):
            raise PermissionError(INVALID)
        try:
            return Principal(name=name, method="oidc", roles=frozenset(roles),
                             groups=groups, approve_namespaces=tuple(namespaces))
        except ValidationError:
            raise PermissionError(INVALID) from None

    # -- keys ---------------------------------------------------------------------------------------

    async def _key(self, kid: str | None) -> dict[str, Any]:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self.config.jwks_refresh_s:
            await self._refresh(due=True)
        elif self._lookup(kid) is None and (self._tried_at is None
                                            or now - self._tried_at >= self.config.jwks_min_refetch_s):
            await self._refresh(due=False)  # a kid we have not seen: the issuer may have rotated
        jwk = self._lookup(kid)
        if jwk is None:
            logger.info("OIDC token refused: no key with kid %r in the issuer's JWKS", kid)
            raise PermissionError(INVALID)
        return jwk

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self._keys.get(kid)
        # A token without kid is acceptable only while the issuer publishes exactly one key.
        return next(iter(self._keys.values())) if len(self._keys) == 1 else None

    async def _refresh(self, due: bool) -> None:
        attempts = self._attempts
        async with self._lock:
            if self._attempts == attempts:  # else another request tried while this one waited for the lock
                self._attempts += 1
                self._tried_at = self._clock()
                try:
                    self._keys = await self._fetch()
                    self._fetched_at = self._clock()
                except AuthUnavailable:
                    if due:
                        raise
                    # An early refetch for an unknown kid failed: the keys we have are still within
                    # jwks_refresh_s; the token with the unknown kid is refused, the next try waits.
                    return
            if due and (self._fetched_at is None or self._clock() - self._fetched_at >= self.config.jwks_refresh_s):
                raise AuthUnavailable("the OIDC issuer cannot be reached")

    async def _fetch(self) -> dict[str | None, dict[str, Any]]:
        if self._jwks_url is None:
            discovery = await self._get_json(self.config.issuer.rstrip("/") + "/.well-known/openid-configuration")
            # OpenID Connect Discovery 1.0, section 4.3: the document's issuer must be exactly the one asked.
            if discovery.get("issuer") != self.config.issuer or not isinstance(discovery.get("jwks_uri"), str):
                logger.error("OIDC discovery document of %s names another issuer or no jwks_uri", self.config.issuer)
                raise AuthUnavailable("the OIDC issuer's discovery document is unusable")
            try:
                self._jwks_url = require_https(discovery["jwks_uri"], "jwks_uri")
            except ValueError as exc:
                logger.error("OIDC discovery: %s", exc)
                raise AuthUnavailable("the OIDC issuer's discovery document is unusable") from None
        document = await self._get_json(self._jwks_url)
        keys: dict[str | None, dict[str, Any]] = {}
        for jwk in document.get("keys") or []:
            if not isinstance(jwk, dict) or jwk.get("kty") not in _KTY.values():
                continue  # symmetric ("oct") or unknown keys never verify a token here
            if jwk.get("use") not in (None, "sig"):
                continue
            kid = jwk.get("kid")
            keys[str(kid) if kid is not None else None] = jwk
        if not keys:
            logger.error("the JWKS of %s holds no usable signing key", self.config.issuer)
            raise AuthUnavailable("the OIDC issuer publishes no usable signing key")
        self.fetches += 1
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        client = self._http or httpx.AsyncClient()
        try:
            response = await client.get(url, timeout=self.config.jwks_timeout_s, follow_redirects=False,
                                        headers={"Accept": "application/json"})
            if response.status_code != 200 or len(response.content) > MAX_DOCUMENT_BYTES:
                raise AuthUnavailable(f"the OIDC issuer answered HTTP {response.status_code}")
            document = response.json()
        except httpx.HTTPError as exc:
            logger.warning("OIDC issuer unreachable (%s): %s", url, type(exc).__name__)
            raise AuthUnavailable("the OIDC issuer cannot be reached") from None
        except ValueError:
            raise AuthUnavailable("the OIDC issuer answered something that is not JSON") from None
        finally:
            if self._http is None:
                await client.aclose()
        if not isinstance(document, dict):
            raise AuthUnavailable("the OIDC issuer answered something that is not a JSON object")
        return document


def _verification_key(jwk: dict[str, Any], alg: str) -> Any | None:
    """The public key of ``jwk`` for ``alg``, or None when the JWK is not meant for that algorithm."""
    if jwk.get("kty") != _KTY.get(alg[:2]) or jwk.get("alg") not in (None, alg):
        logger.info("OIDC token refused: its key (kty %s, alg %s) does not verify %s", jwk.get("kty"),
                    jwk.get("alg"), alg)
        return None
    try:
        return jwt.PyJWK(jwk, algorithm=alg).key
    except jwt.PyJWTError:
        logger.warning("the issuer's JWK %r is unusable", jwk.get("kid"))
        return None
