"""OIDC/JWT authentication (issue 12, method 3) against a local issuer: RSA keys made here, its discovery
document and JWKS served over HTTP by a tiny server, tokens signed with PyJWT; kubernaut.identity.oidc
verifies them exactly as it would an SSO provider's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from kubernaut.config.auth import OIDCConfig
from kubernaut.identity.oidc import OIDCAuthenticator
from kubernaut.models.principal import AuthUnavailable, Role
from tests.support.sinks import free_port

AUDIENCE = "kubernaut-console"


class Issuer:
    """An OIDC issuer on 127.0.0.1: /.well-known/openid-configuration and /jwks; keys rotate on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/realms/ops"
        self.keys: dict[str, Any] = {}  # kid → private key
        self.served: list[str] = []  # kids currently in the JWKS
        self.jwks_hits = 0
        self.fail = False
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if issuer.fail:
                    self.send_error(503)
                    return
                if self.path == "/realms/ops/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/realms/ops/jwks":
                    issuer.jwks_hits += 1
                    body = {"keys": [issuer.jwk(kid) for kid in issuer.served]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def new_key(self, kind: str = "rsa") -> str:
        kid = uuid.uuid4().hex[:12]
        self.keys[kid] = (rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa"
                          else ec.generate_private_key(ec.SECP256R1()))
        return kid

    def rotate(self) -> str:
        """A new signing key replaces every served one (the old kid disappears from the JWKS)."""
        kid = self.new_key()
        self.served = [kid]
        return kid

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        algorithm = jwt.algorithms.RSAAlgorithm if isinstance(key, rsa.RSAPrivateKey) else jwt.algorithms.ECAlgorithm
        doc = algorithm.to_jwk(key.public_key(), as_dict=True)
        return {**doc, "kid": kid, "use": "sig"}

    def public_pem(self, kid: str) -> bytes:
        return self.keys[kid].public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)

    def token(self, kid: str | None = None, algorithm: str = "RS256", **overrides: Any) -> str:
        kid = kid or self.served[0]
        now = int(time.time())
        claims = {"iss": self.url, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300,
                  "groups": ["sre"], **overrides}
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.keys[kid], algorithm=algorithm, headers={"kid": kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    server.rotate()
    yield server
    server.close()


def _config(issuer: Issuer, **overrides: Any) -> OIDCConfig:
    values: dict[str, Any] = {
        "enabled": True, "issuer": issuer.url, "audience": [AUDIENCE], "leeway_s": 5,
        "group_roles": {"sre": ["viewer", "approver"], "admins": ["admin"]},
        "group_approve_namespaces": {"sre": ["payments", "checkout"], "admins": ["*"]},
        **overrides,
    }
    return OIDCConfig(**values)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token assembled by hand (PyJWT refuses to make these): alg none, or HS256 keyed with ``secret``."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def test_a_valid_token_becomes_a_principal_with_roles_from_its_groups(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer))  # no jwks_url: found through the discovery document
    principal = await auth.authenticate(issuer.token(groups=["sre", "unmapped"]))
    assert principal is not None
    assert (principal.name, principal.method, principal.actor) == ("alice", "oidc", "oidc:alice")
    assert principal.roles == {Role.VIEWER, Role.APPROVER}
    assert principal.approve_namespaces == ("payments", "checkout")
    assert principal.groups == ("sre", "unmapped")
    admin = await auth.authenticate(issuer.token(sub="bob", groups=["admins", "sre"]))
    assert admin is not None and admin.roles == {Role.VIEWER, Role.APPROVER, Role.ADMIN}
    assert admin.approve_namespaces == ("*", "payments", "checkout")
    nobody = await auth.authenticate(issuer.token(sub="carol", groups=None))
    assert nobody is not None and nobody.roles == frozenset() and nobody.approve_namespaces == ()
    assert issuer.jwks_hits == 1  # keys are kept, not fetched per token


async def test_username_and_groups_claims_and_default_roles_are_configurable(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer, username_claim="email", groups_claim="roles",
                                     default_roles=["viewer"], jwks_url=f"{issuer.url}/jwks"))
    principal = await auth.authenticate(issuer.token(email="alice@example.com", roles="admins"))
    assert principal is not None and principal.name == "alice@example.com"
    assert principal.roles == {Role.VIEWER, Role.ADMIN} and principal.groups == ("admins",)
    with pytest.raises(PermissionError):  # the username claim is required
        await auth.authenticate(issuer.token())
    for odd in ({"email": {"name": "alice"}}, {"email": ""}, {"email": "a" * 300},
                {"email": "alice@example.com", "roles": {"admins": True}}):
        with pytest.raises(PermissionError):  # a 401, never a 500
            await auth.authenticate(issuer.token(**odd))
    mixed = await auth.authenticate(issuer.token(email="alice@example.com", roles=["admins", 7, ["x"]]))
    assert mixed is not None and mixed.groups == ("admins",)
    (kid,) = issuer.served
    odd_kid = _forged({"alg": "RS256", "kid": [kid]}, {"iss": issuer.url, "aud": AUDIENCE, "email": "x"}, b"")
    try:  # PyJWT itself finds no claimable JWT in it (None); either way no principal and no 500
        assert await auth.authenticate(odd_kid) is None
    except PermissionError:
        pass


async def test_expired_and_not_yet_valid_tokens_are_refused_within_leeway_only(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer, leeway_s=30))
    now = int(time.time())
    assert await auth.authenticate(issuer.token(iat=now - 600, exp=now - 10)) is not None  # within leeway
    for claims in ({"iat": now - 600, "exp": now - 60}, {"nbf": now + 120}, {"iat": now + 120},
                   {"exp": None}, {"iat": None}):
        with pytest.raises(PermissionError) as refused:
            await auth.authenticate(issuer.token(**claims))
        assert str(refused.value) == "invalid or expired credentials", claims  # no detail for the caller


async def test_wrong_audience_is_refused_and_another_issuer_is_not_claimed(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer))
    for audience in ("someone-else", ["someone-else", "another"], None):
        with pytest.raises(PermissionError):
            await auth.authenticate(issuer.token(aud=audience))
    assert await auth.authenticate(issuer.token(aud=["someone-else", AUDIENCE])) is not None
    # Another issuer's token (or no JWT at all) is not this method's: the chain tries the next one.
    assert await auth.authenticate(issuer.token(iss="https://evil.example.com")) is None
    assert await auth.authenticate("not-a-jwt") is None
    assert await auth.authenticate("") is None


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer))
    assert await auth.authenticate(issuer.token()) is not None
    (kid,) = issuer.served
    impostor = Issuer.__new__(Issuer)
    impostor.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
    impostor.url, impostor.served = issuer.url, [kid]
    with pytest.raises(PermissionError):
        await auth.authenticate(Issuer.token(impostor))


async def test_rotated_key_is_fetched_once_and_the_withdrawn_key_stops_working(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer, jwks_min_refetch_s=0))
    old = issuer.token()
    assert await auth.authenticate(old) is not None and issuer.jwks_hits == 1
    issuer.rotate()
    fresh = issuer.token()
    principal = await auth.authenticate(fresh)  # unknown kid → one refetch → the new key verifies it
    assert principal is not None and issuer.jwks_hits == 2
    assert await auth.authenticate(fresh) is not None and issuer.jwks_hits == 2
    with pytest.raises(PermissionError):  # the old kid is gone from the JWKS: refetched once, then refused
        await auth.authenticate(old)


async def test_unknown_kids_refetch_at_most_once_per_interval(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer, jwks_min_refetch_s=3600))
    assert await auth.authenticate(issuer.token()) is not None and issuer.jwks_hits == 1
    stranger = issuer.new_key()  # signed by a key the issuer never published
    for _ in range(5):
        with pytest.raises(PermissionError):
            await auth.authenticate(issuer.token(kid=stranger))
    assert issuer.jwks_hits == 1  # the first fetch was just now: no early refetch within the interval
    issuer.rotate()
    with pytest.raises(PermissionError):  # a real rotation waits for the interval too (bounded by it)
        await auth.authenticate(issuer.token())

    clock = [0.0]
    limited = OIDCAuthenticator(_config(issuer, jwks_min_refetch_s=60), clock=lambda: clock[0])
    assert await limited.authenticate(issuer.token()) is not None
    hits = issuer.jwks_hits
    for _ in range(3):
        with pytest.raises(PermissionError):
            await limited.authenticate(issuer.token(kid=stranger))
    clock[0] = 61.0
    with pytest.raises(PermissionError):
        await limited.authenticate(issuer.token(kid=stranger))
    assert issuer.jwks_hits == hits + 1  # one refetch after 60 s, however many unknown kids came in between


async def test_alg_none_and_hs256_keyed_with_the_public_key_are_refused(issuer: Issuer) -> None:
    auth = OIDCAuthenticator(_config(issuer))
    assert await auth.authenticate(issuer.token()) is not None
    (kid,) = issuer.served
    now = int(time.time())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "iat": now, "exp": now + 300,
              "groups": ["admins"]}
    for alg in ("none", "None", "NONE"):
        with pytest.raises(PermissionError):
            await auth.authenticate(_forged({"alg": alg, "kid": kid, "typ": "JWT"}, claims, None))
    # The classic confusion attack: an HMAC whose secret is the issuer's public key, which anyone can fetch.
    for secret in (issuer.public_pem(kid), json.dumps(issuer.jwk(kid)).encode()):
        with pytest.raises(PermissionError):
            await auth.authenticate(_forged({"alg": "HS256", "kid": kid, "typ": "JWT"}, claims, secret))
    # Even when an operator lists more algorithms, a key only verifies the family of its type.
    wide = OIDCAuthenticator(_config(issuer, algorithms=["RS256", "ES256"]))
    ec_kid = issuer.new_key("ec")
    issuer.served = [kid, ec_kid]
    assert await wide.authenticate(issuer.token(kid=ec_kid, algorithm="ES256")) is not None
    ec_signed_under_rsa_kid = jwt.encode(claims, issuer.keys[ec_kid], algorithm="ES256", headers={"kid": kid})
    with pytest.raises(PermissionError):
        await wide.authenticate(ec_signed_under_rsa_kid)
    with pytest.raises(PermissionError):  # RS384 is a fine algorithm, but not one this config allows
        await auth.authenticate(issuer.token(algorithm="RS384"))


def test_config_pins_asymmetric_algorithms_and_https_and_needs_an_audience() -> None:
    for algorithms in (["none"], ["HS256"], ["RS256", "HS512"], []):
        with pytest.raises(ValidationError):
            OIDCConfig(enabled=True, issuer="https://login.example.com", audience=["k"], algorithms=algorithms)
    with pytest.raises(ValidationError, match="audience"):
        OIDCConfig(enabled=True, issuer="https://login.example.com", audience=[""])
    with pytest.raises(ValidationError, match="issuer"):
        OIDCConfig(enabled=True, audience=["k"])
    with pytest.raises(ValidationError, match="https"):
        OIDCConfig(enabled=True, issuer="http://login.example.com", audience=["k"])
    with pytest.raises(ValidationError, match="https"):
        OIDCConfig(enabled=True, issuer="https://login.example.com", audience=["k"],
                   jwks_url="http://keys.example.com/jwks")
    with pytest.raises(ValidationError):
        OIDCConfig(enabled=True, issuer="https://login.example.com", audience=["k"], group_roles={"g": ["root"]})
    assert OIDCConfig().enabled is False  # off by default; then nothing is required
    with pytest.raises(ValueError, match="enabled"):
        OIDCAuthenticator(OIDCConfig())


async def test_unreachable_issuer_is_unavailable_never_an_allow(issuer: Issuer) -> None:
    token = issuer.token()
    closed = OIDCAuthenticator(_config(issuer, jwks_url=f"http://127.0.0.1:{free_port()}/jwks"))
    with pytest.raises(AuthUnavailable):
        await closed.authenticate(token)
    issuer.fail = True  # the issuer answers 503
    with pytest.raises(AuthUnavailable):
        await OIDCAuthenticator(_config(issuer)).authenticate(token)
    issuer.fail = False

    # Keys that are due for refresh are not trusted while the issuer is down.
    clock = [0.0]
    auth = OIDCAuthenticator(_config(issuer, jwks_refresh_s=60), clock=lambda: clock[0])
    assert await auth.authenticate(token) is not None
    issuer.fail = True
    clock[0] = 30.0
    assert await auth.authenticate(token) is not None  # still fresh: no fetch needed
    clock[0] = 61.0
    with pytest.raises(AuthUnavailable):
        await auth.authenticate(token)
    issuer.fail = False
    assert await auth.authenticate(token) is not None  # the issuer is back


async def test_discovery_naming_another_issuer_is_unusable(issuer: Issuer) -> None:
    config = _config(issuer)
    other = config.model_copy(update={"issuer": issuer.url + "/"})  # not the discovery document's issuer
    token = issuer.token(iss=other.issuer)
    with pytest.raises(AuthUnavailable):
        await OIDCAuthenticator(other).authenticate(token)
