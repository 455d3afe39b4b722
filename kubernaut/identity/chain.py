"""From an ``Authorization`` header to a principal, and from a principal to "may it do this?".

The chain asks each configured method (static tokens, OIDC, Kubernetes TokenReview) in turn; the first that
claims the bearer decides who the caller is. The principal's method then decides its permissions: roles for
static tokens, OIDC and the anonymous principal (:mod:`kubernaut.identity.roles`), SubjectAccessReviews for
Kubernetes principals. Every refusal is a :class:`Denied` with its HTTP status and is counted
(``ray_kubernaut_auth_denied_total{reason}``); nothing here ever allows on error.

Anonymous access exists only where no authentication is configured, and only on a loopback address unless
``gateway.allow_anonymous`` is set (:func:`anonymous_principal`); the gateway refuses to start otherwise.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kubernaut.cluster.api import ClusterAPI
from kubernaut.config.settings import GatewayConfig
from kubernaut.identity.kubernetes import KubernetesAuthenticator, KubernetesAuthorizer
from kubernaut.identity.oidc import OIDCAuthenticator
from kubernaut.identity.roles import RoleAuthorizer
from kubernaut.identity.static_tokens import StaticTokenAuthenticator
from kubernaut.models.principal import Authenticator, Authorizer, AuthUnavailable, Permission, Principal, Role
from kubernaut.observability import metrics

logger = logging.getLogger("kubernaut.identity")

ANONYMOUS = Principal(name="anonymous", method="anonymous", roles=frozenset({Role.ADMIN}), approve_namespaces=("*",))

#: Seconds a caller should wait after a 503 (the authority that checks its credentials is unreachable).
UNAVAILABLE_RETRY_S = 5.0


class Denied(Exception):
    """A refusal: ``status`` 401 (who are you?), 403 (not allowed) or 503 (cannot check now); ``reason`` is the
    metric label, ``message`` what the caller reads (nothing about valid credentials)."""

    def __init__(self, status: int, reason: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.status == 401:
            return {"WWW-Authenticate": 'Bearer realm="kubernaut"'}
        if self.retry_after is not None:
            return {"Retry-After": str(int(self.retry_after))}
        return {}


class StartupRefused(ValueError):
    """The gateway must not serve with this configuration (fail closed at start)."""


def is_loopback(host: str | None) -> bool:
    """True only for an address that is certainly loopback; unknown (None) or a wildcard is not."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name could resolve anywhere


def anonymous_principal(config: GatewayConfig, host: str | None, authentication_configured: bool
                        ) -> Principal | None:
    """The principal of requests without credentials: None once any authentication is configured.

    Without authentication, loopback (the local quickstart: only this machine can call) or an explicit
    ``allow_anonymous`` gives every caller :data:`ANONYMOUS` (role admin); anything else refuses to start.
    """
    if authentication_configured:
        return None
    if config.allow_anonymous:
        logger.warning("gateway.allow_anonymous is true and no authentication is configured: every caller on %s "
                       "is the principal 'anonymous' with role admin (may approve and replay)", host or "any address")
        return ANONYMOUS
    if is_loopback(host):
        logger.warning("no authentication configured: serving loopback only, every local caller is 'anonymous' "
                       "with role admin; configure gateway.tokens before listening on another address")
        return ANONYMOUS
    raise StartupRefused(
        f"refusing to serve on {host or 'an unknown address'} without authentication: configure gateway.tokens "
        "(KUBERNAUT_GATEWAY__TOKENS, see `kubernaut token new`), or bind 127.0.0.1 (http_options.host), or set "
        "gateway.allow_anonymous: true to accept anonymous admin access knowingly")


def deny(status: int, reason: str, message: str, retry_after: float | None = None) -> Denied:
    metrics.auth_denied(reason)
    return Denied(status, reason, message, retry_after)


@dataclass
class AuthChain:
    """The configured authentication methods, in order, and the authorizer of each principal method."""

    authenticators: Sequence[Authenticator] = ()
    # By Principal.method; principals of any other method are authorized by their roles.
    authorizers: Mapping[str, Authorizer] = field(default_factory=dict)
    anonymous: Principal | None = None
    methods: tuple[str, ...] = ()  # names of the configured methods, for /api/v1/info
    roles: Authorizer = field(default_factory=RoleAuthorizer)

    async def authenticate(self, authorization: str | None) -> Principal:
        if self.anonymous is not None:
            return self.anonymous  # no authentication configured (and allowed to run so)
        if not authorization:
            raise deny(401, "missing", "unauthorized: a bearer token is required")
        scheme, _, bearer = authorization.partition(" ")
        bearer = bearer.strip()
        if scheme.lower() != "bearer" or not bearer:
            raise deny(401, "malformed", "unauthorized: use 'Authorization: Bearer <token>'")
        for authenticator in self.authenticators:
            try:
                principal = await authenticator.authenticate(bearer)
            except AuthUnavailable:
                raise deny(503, "unavailable", "cannot check these credentials right now; retry",
                           UNAVAILABLE_RETRY_S) from None
            except PermissionError:
                raise deny(401, "invalid", "unauthorized: invalid or expired credentials") from None
            if principal is not None:
                return principal
        raise deny(401, "invalid", "unauthorized: invalid or expired credentials")

    async def authorize(self, principal: Principal, permission: Permission) -> None:
        authorizer = self.authorizers.get(principal.method, self.roles)
        try:
            allowed = await authorizer.allowed(principal, permission)
        except AuthUnavailable:
            raise deny(503, "unavailable", "cannot check this permission right now; retry",
                       UNAVAILABLE_RETRY_S) from None
        if not allowed:
            raise deny(403, "forbidden", f"forbidden: {principal.actor} needs {permission.describe()}")

    async def allows(self, principal: Principal, permission: Permission) -> bool:
        """Whether ``principal`` holds ``permission``, for what a page offers (the console's approve button):
        not a refusal, so nothing is counted; an authority that cannot answer means no."""
        try:
            return await self.authorizers.get(principal.method, self.roles).allowed(principal, permission)
        except AuthUnavailable:
            return False

    async def require(self, authorization: str | None, permission: Permission) -> Principal:
        principal = await self.authenticate(authorization)
        await self.authorize(principal, permission)
        return principal


def build_chain(config: GatewayConfig, host: str | None, cluster: ClusterAPI | None = None,
                cluster_unavailable: str | None = None, cluster_name: str | None = None) -> AuthChain:
    """The chain for this gateway: static tokens, then OIDC, then Kubernetes, each when configured.

    ``cluster`` is the gateway's API server connection (Kubernetes method only; ``cluster_unavailable`` says
    why there is none), the API server of the cluster Kubernaut manages: ``cluster_name`` (the permissions'
    cluster) is its name unless ``gateway.kubernetes.cluster`` says otherwise. Raises :class:`StartupRefused`
    where the gateway must not serve: a method enabled but impossible to run, or no authentication off loopback
    (:func:`anonymous_principal`).
    """
    authenticators: list[Authenticator] = []
    authorizers: dict[str, Authorizer] = {}
    methods: list[str] = []
    tokens = StaticTokenAuthenticator(config.tokens)
    if tokens.configured:
        authenticators.append(tokens)
        methods.append("token")
    if config.oidc.enabled:
        # Before Kubernetes: OIDC claims only tokens of its exact issuer and checks them locally, so its users'
        # tokens never reach the API server (whose TokenReview would refuse them as someone else's JWTs).
        authenticators.append(OIDCAuthenticator(config.oidc))
        methods.append("oidc")
    if config.kubernetes.enabled:
        if cluster is None:
            # Serving without it would turn every Kubernetes user away with 401s that look like bad tokens.
            raise StartupRefused("gateway.kubernetes.enabled is true but the gateway has no Kubernetes credentials"
                                 f" ({cluster_unavailable or 'no API server connection'})")
        kube = config.kubernetes
        if kube.cluster is None and cluster_name is not None:
            # Approvals name the managed cluster; an authorizer without a name would refuse them all.
            kube = kube.model_copy(update={"cluster": cluster_name})
        authenticators.append(KubernetesAuthenticator(cluster, kube))
        authorizers["kubernetes"] = KubernetesAuthorizer(cluster, kube)
        methods.append("kubernetes")
    return AuthChain(authenticators=authenticators, authorizers=authorizers, methods=tuple(methods),
                     anonymous=anonymous_principal(config, host, bool(authenticators)))

