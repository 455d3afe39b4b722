"""Bearer-token check for the webhook and API: several tokens for rotation, constant-time compare."""

from __future__ import annotations

import hmac


class TokenVerifier:
    def __init__(self, tokens: list[str]) -> None:
        self._tokens = [t.encode() for t in tokens if t]

    @property
    def enabled(self) -> bool:
        return bool(self._tokens)

    def verify(self, authorization: str | None) -> bool:
        if not self.enabled:
            return True
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        presented = authorization[7:].strip().encode()
        # Compare against every token, even after a match, so timing does not reveal which one matched.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(presented, token)
        return matched
