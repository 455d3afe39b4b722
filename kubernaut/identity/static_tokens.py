"""Static bearer tokens for machines (AlertManager, scripts): checked against hashes, each with its roles.

The configuration holds ``sha256:<hex>`` of each token (:class:`kubernaut.config.settings.StaticToken`), never
the token: whoever reads the configuration or the secret cannot call the API with it. sha256 suffices because
the tokens are high-entropy (:func:`new_token` makes 256-bit ones), so the hash cannot be inverted by guessing;
a password KDF would only add latency to every webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from kubernaut.config.settings import StaticToken
from kubernaut.models.principal import Principal

#: Shorter tokens are refused by ``kubernaut token hash``: 32 characters of a random alphabet are ~160 bits or more.
MIN_TOKEN_CHARS = 32


def hash_token(token: str) -> str:
    """The configuration form of ``token``: ``sha256:<64 hex>``."""
    if not token or not token.strip():
        raise ValueError("an empty token is not a credential")
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh 256-bit token, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class StaticTokenAuthenticator:
    """:class:`kubernaut.models.principal.Authenticator` for ``gateway.tokens``.

    Claims a bearer only when its hash is configured; anything else is "not mine" (``None``), so the chain can
    try Kubernetes and OIDC next and answers 401 when nobody claims it.
    """

    def __init__(self, tokens: Sequence[StaticToken]) -> None:
        self._entries = [(bytes.fromhex(t.hash.removeprefix("sha256:")), Principal(
            name=t.name, method="token", roles=frozenset(t.roles), approve_namespaces=tuple(t.approve_namespaces)))
            for t in tokens]

    @property
    def configured(self) -> bool:
        return bool(self._entries)

    async def authenticate(self, bearer: str) -> Principal | None:
        if not bearer:
            return None
        digest = hashlib.sha256(bearer.encode()).digest()
        # Compare with every entry, even after a match: the time taken says nothing about which one matched.
        found: Principal | None = None
        for expected, principal in self._entries:
            if hmac.compare_digest(digest, expected):
                found = principal
        return found
