"""Signing in to the console with OIDC (authorization code + PKCE) against a local issuer that speaks the
protocol: its discovery document and JWKS (tests/identity/test_oidc.py's issuer) and a token endpoint here that
checks the code, the redirect URI and the PKCE verifier before it hands out an ID token. The ID token is then
verified by the gateway's own OIDC authenticator through the authentication chain."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kubernaut.config import load_config
from kubernaut.gateway import services as gateway_services
from kubernaut.gateway.console import ROUTERS, web
from kubernaut.gateway.console.session import OIDC_COOKIE, SESSION_COOKIE, Session, SessionCodec, key_from_secret
from kubernaut.gateway.services import GatewayServices
from kubernaut.identity.chain import build_chain
from tests.identity.test_oidc import AUDIENCE, Issuer
from tests.support.sinks import free_port

SECRET = "o" * 40


class TokenEndpoint:
    """The issuer's token endpoint: one code per sign-in, redeemed once, with its PKCE verifier."""

    def __init__(self, issuer: Issuer) -> None:
        self.codes: dict[str, dict[str, str]] = {}
        self.nonce_override: str | None = None
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/token"
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()
                                                      ).items()}
                grant = endpoint.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                if (grant is None or form.get("grant_type") != "authorization_code"
                        or form.get("redirect_uri") != grant["redirect_uri"] or form.get("client_id") != AUDIENCE
                        or challenge.decode() != grant["challenge"]):
                    self._answer(400, {"error": "invalid_grant"})
                    return
                nonce = endpoint.nonce_override or grant["nonce"]
                self._answer(200, {"access_token": "opaque", "token_type": "Bearer",
                                   "id_token": issuer.token(nonce=nonce, sub="alice", groups=["sre"])})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def authorize(self, location: str) -> dict[str, str]:
        """What the issuer does once the person has signed in there: a code bound to this request."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["response_type"] == "code" and query["client_id"] == AUDIENCE
        assert query["code_challenge_method"] == "S256" and "openid" in query["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": query["code_challenge"], "nonce": query["nonce"],
                            "redirect_uri": query["redirect_uri"]}
        return {"code": code, "state": query["state"]}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def sso() -> Iterator[tuple[TestClient, TokenEndpoint]]:
    issuer = Issuer()
    issuer.rotate()
    tokens = TokenEndpoint(issuer)
    config = load_config({
        "console": {"session_secret": SECRET, "oidc": {"client_id": AUDIENCE, "token_endpoint": tokens.url,
                                                        "authorization_endpoint": f"{issuer.url}/auth"}},
        "gateway": {"oidc": {"enabled": True, "issuer": issuer.url, "audience": [AUDIENCE],
                             "group_roles": {"sre": ["viewer"]}}}})
    previous = gateway_services._installed
    gateway_services.install(GatewayServices(config=config, db=None, auth=build_chain(config.gateway, "0.0.0.0"),  # type: ignore[arg-type]
                                             deployments=None, ingest=None, analyze_limiter=None))  # type: ignore[arg-type]
    web._console = None
    app = FastAPI()
    for router in ROUTERS:
        app.include_router(router)
    try:
        with TestClient(app, follow_redirects=False) as client:
            yield client, tokens
    finally:
        gateway_services._installed = previous
        web._console = None
        tokens.close()
        issuer.close()


def start(client: TestClient) -> str:
    assert "/console/oidc/start" in client.get("/console/signin").text
    response = client.get("/console/oidc/start?next=%2Fconsole%2Fapprovals")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    # Lax: the issuer's redirect back is a navigation from another site, which a Strict cookie would miss.
    assert cookie.startswith(f"{OIDC_COOKIE}=") and "SameSite=lax" in cookie and "HttpOnly" in cookie
    return response.headers["location"]


def test_sign_in_with_code_and_pkce(sso: tuple[TestClient, TokenEndpoint]) -> None:
    client, tokens = sso
    location = start(client)
    assert location.startswith("http://127.0.0.1:") and "/realms/ops/auth?" in location
    assert parse_qs(urlsplit(location).query)["redirect_uri"] == ["http://testserver/console/oidc/callback"]
    answer = tokens.authorize(location)
    signed_in = client.get("/console/oidc/callback", params=answer)
    assert signed_in.status_code == 200, signed_in.text
    assert 'http-equiv="refresh" content="0;url=/console/approvals"' in signed_in.text
    assert "oidc:alice" in signed_in.text
    session = SessionCodec(key_from_secret(SECRET), 3600).open(client.cookies[SESSION_COOKIE], Session)
    assert session is not None and session.method == "oidc" and session.credential.count(".") == 2
    # The same code, state and cookie once more: the code is spent, and the state cookie is gone.
    again = client.get("/console/oidc/callback", params=answer)
    assert again.status_code == 400


def test_a_callback_for_another_sign_in_is_refused(sso: tuple[TestClient, TokenEndpoint]) -> None:
    client, tokens = sso
    answer = tokens.authorize(start(client))
    assert client.get("/console/oidc/callback", params={**answer, "state": "forged"}).status_code == 400
    assert SESSION_COOKIE not in client.cookies or SessionCodec(key_from_secret(SECRET), 3600).open(
        client.cookies[SESSION_COOKIE], Session).credential is None


def test_an_id_token_with_another_nonce_is_refused(sso: tuple[TestClient, TokenEndpoint]) -> None:
    client, tokens = sso
    tokens.nonce_override = "someone-elses-sign-in"
    refused = client.get("/console/oidc/callback", params=tokens.authorize(start(client)))
    assert refused.status_code == 401 and "not for this sign-in" in refused.text


def test_a_wrong_pkce_verifier_gets_no_token(sso: tuple[TestClient, TokenEndpoint]) -> None:
    client, tokens = sso
    answer = tokens.authorize(start(client))
    tokens.codes[answer["code"]]["challenge"] = "another-challenge"
    refused = client.get("/console/oidc/callback", params=answer)
    assert refused.status_code == 401 and "no ID token" in refused.text
