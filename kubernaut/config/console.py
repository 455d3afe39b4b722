"""Configuration of the web console (issue 13, section 1): sessions, live refresh, sign-in with OIDC.

The console is served by the gateway at ``/console`` with the same principals and permissions as the REST API;
this section only says how its browser sessions work. The OIDC issuer, audiences and group roles are the
gateway's (``gateway.oidc``): the console adds the client that signs people in with the authorization code flow.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from kubernaut.config.auth import require_https


class ConsoleOIDCConfig(BaseModel):
    """The console's OIDC client (authorization code + PKCE). Used when ``client_id`` is set and
    ``gateway.oidc`` is enabled; ``client_id`` must be one of ``gateway.oidc.audience`` (the ID token it gets
    is then checked by the gateway's own OIDC authenticator, as any bearer token)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = ""
    # Confidential clients only; a public client relies on PKCE alone. Put it in the environment
    # (KUBERNAUT_CONSOLE__OIDC__CLIENT_SECRET).
    client_secret: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email", "groups"])
    # The issuer's endpoints; empty: discovered from <issuer>/.well-known/openid-configuration.
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=60)

    @field_validator("authorization_endpoint", "token_endpoint")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        return require_https(value, "console.oidc endpoint") if value else None


class ConsoleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Encrypts and signs the session cookie (it carries the caller's credential). Empty: a random key is made
    # once and kept in the database, so every gateway replica shares it. Set it (≥ 32 characters, from the
    # environment: KUBERNAUT_CONSOLE__SESSION_SECRET) to rotate it or to keep sessions across databases.
    session_secret: SecretStr | None = None
    # A session ends this long after sign-in; the credential in it is checked again on every request.
    session_ttl_s: int = Field(default=8 * 3600, ge=300, le=7 * 86_400)
    # How often the incident list, an open incident and the approvals refresh themselves (htmx polling).
    refresh_s: float = Field(default=3.0, ge=1, le=60)
    page_size: int = Field(default=25, ge=5, le=200)
    # Linked from the system page; None hides the link.
    ray_dashboard_url: str | None = "http://127.0.0.1:8265"
    oidc: ConsoleOIDCConfig = Field(default_factory=ConsoleOIDCConfig)

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("console.session_secret needs at least 32 characters")
        return value
