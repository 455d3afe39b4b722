"""Kubernetes identities (issue 12, method 2): TokenReview for who, SubjectAccessReview for what.

A bearer token is sent to the API server in a ``TokenReview`` (authentication.k8s.io/v1) with the gateway's
own credentials; the user it names becomes a :class:`Principal` with ``method="kubernetes"``. Each
:class:`Permission` of such a principal is a ``SubjectAccessReview`` (authorization.k8s.io/v1) on the virtual
resource ``<resource>.kubernaut.ai``, so platform teams grant Kubernaut rights with ordinary RBAC: the
ClusterRoles ``kubernaut-viewer``, ``kubernaut-approver`` and ``kubernaut-admin`` (deploy/12-kubernaut-roles.yaml)
bound per namespace with a RoleBinding. The gateway's own account needs ``create`` on both reviews
(deploy/11-gateway-auth.yaml).

Which tokens are claimed (``KubernetesAuthConfig.claim``): by default only JWT-shaped ones (ServiceAccount
tokens are JWTs), optionally only of listed issuers; anything else is "not mine" and never leaves the
process. The chain tries static tokens first, so a static token that matched is never sent either; with
``claim: any`` every token no earlier method claimed is reviewed.

Fail closed: an API server that does not answer, answers 5xx/429, or refuses the gateway the review itself
(missing RBAC) is :class:`AuthUnavailable` (503), never an allow and never cached. Answers are cached briefly
by the token's sha256 (never the token) and by the exact review asked: allows for ``cache_ttl_s`` (and never
past the token's own ``exp``), refusals for the shorter ``negative_cache_ttl_s``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import jwt
from pydantic import ValidationError

from kubernaut.cluster.api import ClusterAPI, ReviewKind
from kubernaut.cluster.errors import ApiError, ClusterError
from kubernaut.config.auth import KubernetesAuthConfig
from kubernaut.models.principal import API_GROUP, AuthUnavailable, Permission, Principal

logger = logging.getLogger(__name__)

V = TypeVar("V")
_MISS = object()
# Longer than any real bearer token (ServiceAccount JWTs are ~1 KB); larger ones are refused unread.
MAX_TOKEN_BYTES = 16 * 1024
INVALID = "invalid or expired credentials"  # the only 401 reason: it says nothing about valid ones


class TTLCache(Generic[V]):
    """At most ``size`` entries, each with its own expiry; the least recently used goes first when full."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self._clock = clock
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | object:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return _MISS
            if item[0] <= self._clock():
                del self._items[key]
                return _MISS
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: Hashable, value: V, ttl_s: float) -> None:
        if self.size <= 0 or ttl_s <= 0:
            return
        with self._lock:
            self._items[key] = (self._clock() + ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class _Refused:
    """A cached refusal (a token the API server did not authenticate)."""


_REFUSED = _Refused()


async def _review(cluster: ClusterAPI, kind: ReviewKind, spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """One review; every way of getting no answer is AuthUnavailable (the request is not worth a guess)."""
    try:
        return await cluster.review(kind, spec, timeout_s=timeout_s)
    except ApiError as exc:
        # 401/403 here mean the gateway itself may not create the review (its RBAC, deploy/11-gateway-auth.yaml):
        # a misconfiguration, not the caller's fault, and still no reason to allow.
        logger.error("%s failed: HTTP %s %s", kind, exc.status, exc.reason)
        raise AuthUnavailable(f"the Kubernetes API server did not answer the {kind}") from None
    except ClusterError as exc:
        logger.warning("%s failed: %s", kind, exc)
        raise AuthUnavailable(f"the Kubernetes API server did not answer the {kind}") from None


class KubernetesAuthenticator:
    """:class:`~kubernaut.models.principal.Authenticator` by TokenReview."""

    def __init__(self, cluster: ClusterAPI, config: KubernetesAuthConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cluster = cluster
        self.config = config
        self._cache: TTLCache[Principal | _Refused] = TTLCache(config.cache_size, clock)

    def claims(self, bearer: str) -> bool:
        """Whether this token is for this method (see the module docstring); never asks the API server."""
        if self.config.claim == "any":
            return True
        try:
            jwt.get_unverified_header(bearer)
            payload = jwt.decode(bearer, options={"verify_signature": False})
        except jwt.PyJWTError:
            return False
        return not self.config.issuers or payload.get("iss") in self.config.issuers

    async def authenticate(self, bearer: str) -> Principal | None:
        if not self.config.enabled or not bearer or not self.claims(bearer):
            return None
        if len(bearer.encode("utf-8", errors="replace")) > MAX_TOKEN_BYTES:
            raise PermissionError(INVALID)
        key = hashlib.sha256(bearer.encode("utf-8", errors="replace")).hexdigest()
        cached = self._cache.get(key)
        if isinstance(cached, Principal):
            return cached
        if cached is _REFUSED:
            raise PermissionError(INVALID)
        spec: dict[str, Any] = {"token": bearer}
        if self.config.audiences:
            spec["audiences"] = list(self.config.audiences)
        status = await _review(self.cluster, "TokenReview", spec, self.config.timeout_s)
        principal = self._principal(status)
        if principal is None:
            self._cache.put(key, _REFUSED, self.config.negative_cache_ttl_s)
            raise PermissionError(INVALID)
        self._cache.put(key, principal, min(self.config.cache_ttl_s, _seconds_left(bearer)))
        return principal

    def _principal(self, status: dict[str, Any]) -> Principal | None:
        if status.get("authenticated") is not True:
            if status.get("error"):  # the API server's reason is for the log, never for the caller
                logger.info("TokenReview refused a token: %s", str(status["error"])[:200])
            return None
        if self.config.audiences and not set(status.get("audiences") or ()) & set(self.config.audiences):
            # A client that asks for audiences must check that the answer names one of them (TokenReview API).
            logger.info("TokenReview authenticated a token for none of the audiences %s", self.config.audiences)
            return None
        user = status.get("user") or {}
        try:
            return Principal(
                name=str(user.get("username") or ""),
                method="kubernetes",
                groups=tuple(str(g) for g in user.get("groups") or ()),
                kube_uid=str(user["uid"]) if user.get("uid") else None,
                kube_extra={str(k): tuple(str(x) for x in v or ()) for k, v in (user.get("extra") or {}).items()},
            )
        except (ValidationError, AttributeError, TypeError):
            logger.warning("TokenReview authenticated a user Kubernaut cannot represent (empty or overlong name)")
            return None


def _seconds_left(bearer: str) -> float:
    """How long the token says it stays valid (its unverified ``exp``; the API server verified the signature):
    a cached allow never outlives the token. Tokens without ``exp`` (legacy Secret tokens, static files) are
    bounded by the cache TTL alone."""
    try:
        exp = jwt.decode(bearer, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return float("inf")
    if isinstance(exp, (int, float)):
        return exp - time.time()
    return float("inf")


class KubernetesAuthorizer:
    """:class:`~kubernaut.models.principal.Authorizer` by SubjectAccessReview, for ``method="kubernetes"``
    principals only (any other principal is refused: its rights come from config, not from RBAC)."""

    def __init__(self, cluster: ClusterAPI, config: KubernetesAuthConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cluster = cluster
        self.config = config
        self._cache: TTLCache[bool] = TTLCache(config.cache_size, clock)

    async def allowed(self, principal: Principal, permission: Permission) -> bool:
        if principal.method != "kubernetes" or not self.config.enabled:
            return False
        # The API server answers for its own cluster only; a permission in another cluster is not its to grant.
        if permission.cluster is not None and permission.cluster != self.config.cluster:
            return False
        attributes: dict[str, str] = {"group": API_GROUP, "resource": permission.resource, "verb": permission.verb}
        if permission.namespace:
            attributes["namespace"] = permission.namespace
        spec: dict[str, Any] = {
            "user": principal.name,
            "groups": list(principal.groups),
            "extra": {k: list(v) for k, v in principal.kube_extra.items()},
            "resourceAttributes": attributes,
        }
        if principal.kube_uid:
            spec["uid"] = principal.kube_uid
        key = (principal.name, principal.kube_uid, principal.groups, tuple(sorted(principal.kube_extra.items())),
               tuple(sorted(attributes.items())))
        cached = self._cache.get(key)
        if isinstance(cached, bool):
            return cached
        status = await _review(self.cluster, "SubjectAccessReview", spec, self.config.timeout_s)
        allowed = status.get("allowed") is True and status.get("denied") is not True
        if status.get("evaluationError"):
            # RBAC could not evaluate every rule (e.g. a binding to a missing role): what it said is kept, but
            # not cached, so a repaired binding counts at once.
            logger.warning("SubjectAccessReview for %s had an evaluation error: %s", permission.describe(),
                           str(status["evaluationError"])[:200])
            return allowed
        self._cache.put(key, allowed, self.config.cache_ttl_s if allowed else self.config.negative_cache_ttl_s)
        return allowed
