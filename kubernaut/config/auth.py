"""Configuration of the Kubernetes and OIDC authentication methods (issue 12, methods 2 and 3).

``GatewayConfig`` holds one :class:`KubernetesAuthConfig` and one :class:`OIDCConfig`; both are off by default.
Every bound is explicit: a review cache is seconds long and a fixed number of entries, and a JWT verifier
accepts only the asymmetric algorithms listed here (never ``none``, never an HMAC with a public key).
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubernaut.models.principal import Role

# Asymmetric JWS algorithms only: an HMAC (HS*) key would be the issuer's public key, which anyone has.
AsymmetricAlgorithm = Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                              "EdDSA"]


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_https(url: str, field: str) -> str:
    """Keys and identities travel over TLS; plain http only to a loopback address (a local issuer)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return url
    raise ValueError(f"{field} must be an https:// URL (plain http only on a loopback address), got {url!r}")


class KubernetesAuthConfig(BaseModel):
    """Bearer tokens checked with TokenReview, permissions with SubjectAccessReview, by the gateway's own
    Kubernetes credentials (ClusterRole ``kubernaut-gateway-auth`` in deploy/11-gateway-auth.yaml)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # Which bearer tokens this method claims. "jwt": only tokens shaped like a JWT (ServiceAccount tokens,
    # bound or legacy, and OIDC tokens the API server itself trusts); anything else is never sent to the API
    # server, so a mistyped or retired static token does not land in its audit log. "any": every token no
    # earlier method claimed (clusters with webhook or static-file token authentication).
    claim: Literal["jwt", "any"] = "jwt"
    # With claim "jwt": only JWTs whose (unverified) "iss" is one of these, e.g. "https://kubernetes.default.svc"
    # (bound tokens) and "kubernetes/serviceaccount" (legacy Secret tokens). Empty: every JWT. This only routes;
    # the API server decides.
    issuers: list[str] = Field(default_factory=list)
    # TokenReview spec.audiences: when set, the API server must confirm one of them (tokens requested for
    # another audience are refused). Empty: the API server's own audiences.
    audiences: list[str] = Field(default_factory=list)
    # How long a TokenReview or SubjectAccessReview answer is reused: a revoked token or a removed RoleBinding
    # still works this long. Refusals are kept shorter so that a new grant is seen quickly.
    cache_ttl_s: float = Field(default=10.0, ge=0, le=300)
    negative_cache_ttl_s: float = Field(default=2.0, ge=0, le=60)
    cache_size: int = Field(default=10_000, ge=0, le=1_000_000)
    # One review's deadline: past it the principal gets 503, never a guess.
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    # The name of the cluster whose API server answers: a permission naming another cluster is refused.
    cluster: str | None = None

    @model_validator(mode="after")
    def _negative_not_longer(self) -> KubernetesAuthConfig:
        if self.negative_cache_ttl_s > self.cache_ttl_s:
            raise ValueError("negative_cache_ttl_s must not exceed cache_ttl_s")
        return self


class OIDCConfig(BaseModel):
    """OIDC/JWT bearer tokens of one issuer (SSO users of the console), verified locally against its JWKS."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    issuer: str = ""  # the exact "iss" of the tokens, e.g. https://login.example.com/realms/ops
    audience: list[str] = Field(default_factory=list)  # accepted "aud" values (at least one when enabled)
    # The JWKS URL; empty: discovered from <issuer>/.well-known/openid-configuration (jwks_uri).
    jwks_url: str | None = None
    algorithms: list[AsymmetricAlgorithm] = Field(default_factory=lambda: ["RS256"], min_length=1)
    # Clock skew tolerated on exp, nbf and iat.
    leeway_s: float = Field(default=30.0, ge=0, le=300)
    # Keys are fetched again after this long (revoked keys stop being accepted); a token with an unknown kid
    # triggers one early fetch, at most once per jwks_min_refetch_s (an attacker's random kids cannot make
    # us hammer the issuer).
    jwks_refresh_s: float = Field(default=3600.0, ge=10, le=86_400)
    jwks_min_refetch_s: float = Field(default=30.0, ge=0, le=3600)
    jwks_timeout_s: float = Field(default=5.0, gt=0, le=60)
    username_claim: str = Field(default="sub", min_length=1)
    groups_claim: str = Field(default="groups", min_length=1)
    # Roles and approval namespaces per group ("*" = every namespace); a user gets the union over its groups.
    group_roles: dict[str, list[Role]] = Field(default_factory=dict)
    group_approve_namespaces: dict[str, list[str]] = Field(default_factory=dict)
    # Roles of every valid token of this issuer, whatever its groups.
    default_roles: list[Role] = Field(default_factory=list)

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_https(cls, value: str | None) -> str | None:
        return require_https(value, "oidc.jwks_url") if value else None

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> OIDCConfig:
        if not self.enabled:
            return self
        if not self.issuer:
            raise ValueError("oidc.issuer is required when oidc.enabled is true")
        require_https(self.issuer, "oidc.issuer")
        if not [a for a in self.audience if a]:
            raise ValueError("oidc.audience needs at least one non-empty value when oidc.enabled is true")
        return self
