"""Who is asking: the authenticated principal behind a request, and what it may do.

A principal comes only from credentials (a static token, a Kubernetes ServiceAccount/user token checked
with TokenReview, an OIDC/JWT bearer token), never from a request body. Each authentication method
implements :class:`Authenticator`; each permission check goes through :class:`Authorizer`, which answers
for one :class:`Permission` (a verb on a virtual resource of the ``kubernaut.ai`` API group, in a namespace
and cluster when the object has one). Both fail closed: an error is a refusal or "unavailable", never
an allow.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

API_GROUP = "kubernaut.ai"


class Role(str, Enum):
    """Coarse roles; Kubernetes identities get theirs from SubjectAccessReviews instead (ClusterRoles
    ``kubernaut-viewer``, ``kubernaut-approver``, ``kubernaut-admin`` in deploy/)."""

    INGEST = "ingest"  # POST webhooks only
    VIEWER = "viewer"  # read incidents, analyses, actions, audit, patterns; /api/v1/analyze
    APPROVER = "approver"  # decide approvals within the namespaces their grant covers
    ADMIN = "admin"  # everything, plus policy reload and dead-letter replay


AuthMethod = Literal["token", "kubernetes", "oidc", "anonymous"]


class Principal(BaseModel):
    """An authenticated caller. ``name`` is what the audit trail records as the actor."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=256)
    method: AuthMethod
    roles: frozenset[Role] = frozenset()
    groups: tuple[str, ...] = ()
    # Namespaces where an approver may decide ("*" = all); static tokens and OIDC groups get them from config,
    # Kubernetes principals are checked per request with a SubjectAccessReview instead.
    approve_namespaces: tuple[str, ...] = ()
    # The Kubernetes user name and uid as TokenReview returned them (for SubjectAccessReview).
    kube_uid: str | None = None
    kube_extra: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @property
    def actor(self) -> str:
        """The audit actor: ``<method>:<name>`` so a token called "alice" is not the OIDC user alice."""
        return f"{self.method}:{self.name}"


class Permission(BaseModel):
    """One permission, phrased as Kubernetes RBAC phrases it: ``approve approvals.kubernaut.ai in ns/payments``."""

    model_config = ConfigDict(frozen=True)

    verb: str  # get, list, create, approve, replay, ...
    resource: str  # incidents, approvals, actions, audit, jobs, alerts, analyses, policy, ...
    namespace: str | None = None
    cluster: str | None = None

    def describe(self) -> str:
        where = f" in ns/{self.namespace}" if self.namespace else ""
        return f"{self.verb} {self.resource}.{API_GROUP}{where}"


class AuthUnavailable(Exception):
    """The authority that would decide (API server for TokenReview/SAR, the OIDC JWKS) cannot be reached:
    answer 503 for this principal; never allow."""


class Authenticator(Protocol):
    """One authentication method. ``None``: these credentials are not for this method (try the next);
    raise :class:`AuthUnavailable` when the method cannot decide; raise ``PermissionError`` (401) when the
    credentials are for this method but invalid or expired."""

    async def authenticate(self, bearer: str) -> Principal | None: ...


class Authorizer(Protocol):
    async def allowed(self, principal: Principal, permission: Permission) -> bool: ...
