"""Identities and roles (issue 12): static token hashes, the authentication chain, the role → permission
table, the refusal to start without authentication off loopback, and the permission of every route."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from kubernaut.config import load_config
from kubernaut.config.settings import GatewayConfig
from kubernaut.gateway import services as gateway_services
from kubernaut.gateway.routes import ROUTERS
from kubernaut.identity.chain import ANONYMOUS, AuthChain, Denied, StartupRefused, build_chain, is_loopback
from kubernaut.identity.roles import RoleAuthorizer
from kubernaut.identity.static_tokens import StaticTokenAuthenticator, hash_token
from kubernaut.models.principal import AuthUnavailable, Permission, Principal, Role
from kubernaut.observability import metrics

INGEST, VIEWER, APPROVER, ADMIN = ("ingest-" + "i" * 40, "viewer-" + "v" * 40, "approver-" + "a" * 40,
                                   "admin-" + "x" * 40)


def entry(token: str, name: str, roles: list[str], namespaces: list[str] | None = None) -> dict[str, Any]:
    return {"name": name, "roles": roles, "hash": hash_token(token), "approve_namespaces": namespaces or []}


def gateway(**extra: Any) -> GatewayConfig:
    tokens = [entry(INGEST, "alertmanager", ["ingest"]), entry(VIEWER, "grafana", ["viewer"]),
              entry(APPROVER, "oncall", ["viewer", "approver"], ["payments"]), entry(ADMIN, "ops", ["admin"])]
    return load_config({"gateway": {"tokens": tokens, **extra}}).gateway


def denied_count(reason: str) -> float:
    """ray_kubernaut_auth_denied_total{reason} as this process's mirror of it renders (kubernaut_auth_denied)."""
    body, _ = metrics.render_local()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == "kubernaut_auth_denied_total" and sample.labels.get("reason") == reason:
                return sample.value
    return 0.0


# -- hashing and configuration -------------------------------------------------------------------------------

def test_a_token_is_configured_by_its_sha256_only() -> None:
    assert hash_token("s3cret-" * 6) == "sha256:" + hashlib.sha256(("s3cret-" * 6).encode()).hexdigest()
    with pytest.raises(ValueError, match="empty"):
        hash_token("")
    config = gateway()
    assert ADMIN not in config.model_dump_json()  # only hashes are kept


@pytest.mark.parametrize(("tokens", "message"), [
    ([""], "gateway.tokens.0"),
    ([{"name": "x", "roles": ["ingest"], "hash": "sha256:" + hashlib.sha256(b"").hexdigest()}], "empty token"),
    ([{"name": "x", "roles": ["ingest"], "hash": "plain-token"}], "hash"),
    ([{"name": "x", "roles": [], "hash": hash_token("t" * 40)}], "roles"),
    ([{"name": "x", "roles": ["root"], "hash": hash_token("t" * 40)}], "roles"),
    ([{"name": "x", "roles": ["approver"], "hash": hash_token("t" * 40)}], "approve_namespaces"),
    ([entry("t" * 40, "a", ["viewer"]), entry("t" * 40, "b", ["admin"])], "same hash"),
])
def test_bad_tokens_are_configuration_errors(tokens: list[Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_config({"gateway": {"tokens": tokens}})


@pytest.mark.parametrize("old", [[""], ["a-token"], []])
def test_the_old_plain_token_list_is_refused_with_the_way_forward(old: list[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match=r"gateway.tokens .*kubernaut token hash|kubernaut token hash"):
        load_config({"gateway": {"auth_tokens": old}})
    monkeypatch.setenv("KUBERNAUT_GATEWAY__AUTH_TOKENS", '["t1"]')
    with pytest.raises(ValidationError, match="KUBERNAUT_GATEWAY__TOKENS"):
        load_config()


def test_tokens_come_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNAUT_GATEWAY__TOKENS", f'[{{"name": "am", "roles": ["ingest"], '
                                                    f'"hash": "{hash_token(INGEST)}"}}]')
    (token,) = load_config().gateway.tokens
    assert token.name == "am" and token.roles == [Role.INGEST]


# -- static tokens and the chain -----------------------------------------------------------------------------

async def test_several_tokens_of_one_name_are_valid_at_once_for_rotation() -> None:
    old, new = "old-" + "o" * 40, "new-" + "n" * 40
    config = load_config({"gateway": {"tokens": [entry(old, "alertmanager", ["ingest"]),
                                                 entry(new, "alertmanager", ["ingest"])]}}).gateway
    tokens = StaticTokenAuthenticator(config.tokens)
    first, second = await tokens.authenticate(old), await tokens.authenticate(new)
    assert first == second and first is not None and first.actor == "token:alertmanager"
    assert await tokens.authenticate("other") is None and await tokens.authenticate("") is None


async def test_the_chain_maps_a_bearer_to_its_principal_and_refuses_the_rest() -> None:
    chain = build_chain(gateway(), "0.0.0.0")
    assert chain.anonymous is None and chain.methods == ("token",)
    assert (await chain.authenticate(f"Bearer {VIEWER}")).name == "grafana"
    assert (await chain.authenticate(f"bearer {ADMIN}")).roles == frozenset({Role.ADMIN})
    before = {reason: denied_count(reason) for reason in ("missing", "malformed", "invalid")}
    refusals = []
    for header, reason in ((None, "missing"), ("", "missing"), (ADMIN, "malformed"), (f"Basic {ADMIN}", "malformed"),
                           ("Bearer ", "malformed"), ("Bearer wrong", "invalid"), (f"Bearer {ADMIN}x", "invalid")):
        with pytest.raises(Denied) as info:
            await chain.authenticate(header)
        assert (info.value.status, info.value.reason) == (401, reason), header
        assert info.value.headers["WWW-Authenticate"].startswith("Bearer")
        refusals.append(info.value.message)
    # A wrong token reads like any other wrong token: nothing about the valid ones.
    assert all(ADMIN not in m and "grafana" not in m and "ops" not in m for m in refusals)
    assert denied_count("invalid") == before["invalid"] + 2 and denied_count("missing") == before["missing"] + 2
    assert denied_count("malformed") == before["malformed"] + 3


class Unreachable:
    """An authentication method whose authority cannot be reached (the API server for TokenReview)."""

    async def authenticate(self, bearer: str) -> Principal | None:
        if bearer.startswith("kube-"):
            raise AuthUnavailable("apiserver down")
        return None


class Expired:
    async def authenticate(self, bearer: str) -> Principal | None:
        if bearer.startswith("jwt-"):
            raise PermissionError("expired")
        return None


async def test_an_unreachable_authority_is_503_for_its_principals_only() -> None:
    static = StaticTokenAuthenticator(gateway().tokens)
    chain = AuthChain(authenticators=[static, Expired(), Unreachable()], methods=("token", "oidc", "kubernetes"))
    assert (await chain.authenticate(f"Bearer {INGEST}")).name == "alertmanager"  # static tokens unaffected
    before = denied_count("unavailable")
    with pytest.raises(Denied) as info:
        await chain.authenticate("Bearer kube-sa-token")
    assert info.value.status == 503 and int(info.value.headers["Retry-After"]) >= 1
    assert denied_count("unavailable") == before + 1
    with pytest.raises(Denied) as expired:
        await chain.authenticate("Bearer jwt-expired")
    assert expired.value.status == 401 and "expired" in expired.value.message  # same words as any bad token


class BrokenAuthorizer:
    async def allowed(self, principal: Principal, permission: Permission) -> bool:
        raise AuthUnavailable("SubjectAccessReview timed out")


async def test_an_unreachable_authorizer_never_allows() -> None:
    kube = Principal(name="system:serviceaccount:a:b", method="kubernetes")
    chain = AuthChain(authorizers={"kubernetes": BrokenAuthorizer()})
    with pytest.raises(Denied) as info:
        await chain.authorize(kube, Permission(verb="list", resource="incidents"))
    assert info.value.status == 503


# -- roles → permissions -------------------------------------------------------------------------------------

def allowed(principal: Principal, verb: str, resource: str, namespace: str | None = None) -> bool:
    import asyncio

    return asyncio.run(RoleAuthorizer().allowed(principal, Permission(verb=verb, resource=resource,
                                                                      namespace=namespace)))


def token_principal(roles: set[Role], namespaces: tuple[str, ...] = ()) -> Principal:
    return Principal(name="p", method="token", roles=frozenset(roles), approve_namespaces=namespaces)


def test_ingest_may_only_create_alerts() -> None:
    ingest = token_principal({Role.INGEST})
    assert allowed(ingest, "create", "alerts")
    for verb, resource in (("list", "incidents"), ("get", "incidents"), ("create", "analyses"), ("list", "alerts"),
                           ("approve", "approvals"), ("get", "openapi"), ("replay", "jobs")):
        assert not allowed(ingest, verb, resource), (verb, resource)


def test_a_viewer_reads_and_analyzes_but_cannot_approve_or_replay() -> None:
    viewer = token_principal({Role.VIEWER})
    for verb, resource in (("list", "incidents"), ("get", "incidents"), ("list", "alerts"), ("get", "audit"),
                           ("list", "patterns"), ("create", "analyses"), ("get", "openapi"), ("get", "info")):
        assert allowed(viewer, verb, resource), (verb, resource)
    for verb, resource, ns in (("approve", "approvals", "payments"), ("replay", "jobs", None),
                               ("create", "alerts", None), ("reload", "policy", None)):
        assert not allowed(viewer, verb, resource, ns), (verb, resource)


def test_an_approver_approves_only_within_its_namespaces() -> None:
    approver = token_principal({Role.APPROVER}, ("payments",))
    assert allowed(approver, "approve", "approvals", "payments")
    assert not allowed(approver, "approve", "approvals", "checkout")
    assert not allowed(approver, "approve", "approvals", None)  # a cluster-scoped target needs "*"
    assert not allowed(approver, "list", "incidents")
    everywhere = token_principal({Role.APPROVER}, ("*",))
    assert allowed(everywhere, "approve", "approvals", None) and allowed(everywhere, "approve", "approvals", "x")


def test_admin_may_do_everything() -> None:
    admin = token_principal({Role.ADMIN})
    for verb, resource in (("replay", "jobs"), ("reload", "policy"), ("approve", "approvals"), ("create", "alerts")):
        assert allowed(admin, verb, resource, "any")


def test_a_permission_describes_itself_as_rbac_does() -> None:
    assert Permission(verb="approve", resource="approvals", namespace="payments").describe() == \
        "approve approvals.kubernaut.ai in ns/payments"


# -- fail closed at start ------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "kubernaut.example.com", None, ""])
def test_serving_off_loopback_without_authentication_is_refused(host: str | None) -> None:
    with pytest.raises(StartupRefused, match=r"without authentication.*gateway\.tokens"):
        build_chain(GatewayConfig(), host)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_loopback_without_authentication_serves_anonymous_admin(host: str, caplog: pytest.LogCaptureFixture
                                                                ) -> None:
    chain = build_chain(GatewayConfig(), host)
    assert chain.anonymous == ANONYMOUS and chain.anonymous.roles == frozenset({Role.ADMIN})
    assert "no authentication configured" in caplog.text


async def test_allow_anonymous_serves_any_address_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    chain = build_chain(GatewayConfig(allow_anonymous=True), "0.0.0.0")
    assert await chain.authenticate(None) == ANONYMOUS
    assert "allow_anonymous" in caplog.text and "WARNING" in {r.levelname for r in caplog.records}


async def test_configured_authentication_never_falls_back_to_anonymous() -> None:
    for host in ("127.0.0.1", "0.0.0.0"):
        chain = build_chain(gateway(allow_anonymous=True), host)
        assert chain.anonymous is None
        with pytest.raises(Denied):
            await chain.authenticate(None)


def test_enabled_kubernetes_authentication_without_credentials_refuses_to_start() -> None:
    with pytest.raises(StartupRefused, match="no Kubernetes credentials"):
        build_chain(gateway(kubernetes={"enabled": True}), "0.0.0.0", None, "no kubeconfig")


def test_every_configured_method_is_in_the_chain_tokens_then_oidc_then_kubernetes() -> None:
    from kubernetes import client as kube_client

    from kubernaut.cluster.api import ClusterAPI
    from kubernaut.identity.kubernetes import KubernetesAuthenticator, KubernetesAuthorizer
    from kubernaut.identity.oidc import OIDCAuthenticator

    config = gateway(kubernetes={"enabled": True},
                     oidc={"enabled": True, "issuer": "https://sso.example.com", "audience": ["kubernaut"]})
    chain = build_chain(config, "0.0.0.0", ClusterAPI(kube_client.ApiClient()))
    assert chain.methods == ("token", "oidc", "kubernetes") and chain.anonymous is None
    assert [type(a) for a in chain.authenticators] == [StaticTokenAuthenticator, OIDCAuthenticator,
                                                       KubernetesAuthenticator]
    assert isinstance(chain.authorizers["kubernetes"], KubernetesAuthorizer)
    # The authorizer answers for the managed cluster: approvals name it (Permission.cluster).
    named = build_chain(config, "0.0.0.0", ClusterAPI(kube_client.ApiClient()), cluster_name="prod-eu")
    assert named.authorizers["kubernetes"].config.cluster == "prod-eu"  # type: ignore[attr-defined]
    # Kubernetes or OIDC alone is authentication: no anonymous access, any address.
    assert build_chain(GatewayConfig(oidc=config.oidc), "0.0.0.0").anonymous is None


def test_loopback_is_decided_strictly() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("localhost.evil.example") and not is_loopback(None)


# -- every route declares its permission ---------------------------------------------------------------------

#: Every /api/v1 route and the permission it needs (None: checked per object, in the route).
ROUTE_PERMISSIONS = {
    ("GET", "/api/v1/incidents"): "list incidents.kubernaut.ai",
    ("GET", "/api/v1/incidents/{incident_id}"): "get incidents.kubernaut.ai",
    ("GET", "/api/v1/alerts"): "list alerts.kubernaut.ai",
    ("GET", "/api/v1/actions"): "list actions.kubernaut.ai",
    ("POST", "/api/v1/analyze"): "create analyses.kubernaut.ai",
    ("GET", "/api/v1/context"): "get contexts.kubernaut.ai",
    ("GET", "/api/v1/effectiveness"): "get effectiveness.kubernaut.ai",
    ("GET", "/api/v1/patterns"): "list patterns.kubernaut.ai",
    ("GET", "/api/v1/patterns/clusters"): "list patterns.kubernaut.ai",
    ("GET", "/api/v1/approvals"): "list approvals.kubernaut.ai",
    ("POST", "/api/v1/approvals/{approval_id}/approve"): None,
    ("POST", "/api/v1/approvals/{approval_id}/reject"): None,
    ("GET", "/api/v1/jobs"): "list jobs.kubernaut.ai",
    ("POST", "/api/v1/jobs/{job_id}/retry"): "replay jobs.kubernaut.ai",
    ("GET", "/api/v1/audit/verify"): "get audit.kubernaut.ai",
    ("GET", "/api/v1/info"): "get info.kubernaut.ai",
    ("GET", "/openapi.json"): "get openapi.kubernaut.ai",
    ("GET", "/docs"): "get openapi.kubernaut.ai",
}
#: The webhook authorizes in kubernaut.gateway.ingest (create alerts.kubernaut.ai); these are open.
UNGUARDED = {("POST", "/api/v1/alerts"), ("POST", "/alerts"), ("GET", "/health"), ("GET", "/ready"),
             ("GET", "/metrics"),
             # No bearer token: Slack's request signature, and the presser's grant per approval (routes/slack.py).
             ("POST", "/api/v1/integrations/slack/interactions")}


def declared() -> dict[tuple[str, str], str | None]:
    found: dict[tuple[str, str], str | None] = {}
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            permissions = [d.call.permission.describe() for d in route.dependant.dependencies  # type: ignore[attr-defined]
                           if hasattr(d.call, "permission")]
            for method in route.methods:
                found[(method, route.path)] = permissions[0] if permissions else None
    return found


def test_every_route_declares_the_permission_it_needs() -> None:
    routes = declared()
    assert {k: v for k, v in routes.items() if k not in UNGUARDED} == ROUTE_PERMISSIONS
    assert set(routes) - set(ROUTE_PERMISSIONS) == UNGUARDED


@pytest.fixture
def client() -> Any:
    """The gateway's FastAPI app with services whose storage and deployments are never reached: every request
    here is refused before a route runs."""
    from kubernaut.gateway.deployment import app

    config = load_config({"gateway": {"tokens": [entry(INGEST, "alertmanager", ["ingest"]),
                                                 entry(VIEWER, "grafana", ["viewer"])]}})
    gateway_services.install(gateway_services.GatewayServices(
        config=config, db=None, auth=build_chain(config.gateway, "0.0.0.0"),  # type: ignore[arg-type]
        deployments=None, ingest=None, analyze_limiter=None))  # type: ignore[arg-type]
    assert isinstance(app, FastAPI)
    with TestClient(app) as test_client:
        yield test_client
    gateway_services._installed = None


def test_without_credentials_every_guarded_route_is_401_before_validation(client: TestClient) -> None:
    for (method, path) in ROUTE_PERMISSIONS:
        url = path.replace("{incident_id}", "1").replace("{approval_id}", "1").replace("{job_id}", "x")
        response = client.request(method, url, content=b"not json")
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_the_ingest_token_gets_403_naming_the_permission(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {INGEST}"}
    for (method, path), permission in ROUTE_PERMISSIONS.items():
        if permission is None:
            continue
        url = path.replace("{incident_id}", "1").replace("{job_id}", "1")
        response = client.request(method, url, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["detail"] == f"forbidden: token:alertmanager needs {permission}"


def test_a_viewer_cannot_replay_jobs_nor_reach_docs_without_a_token(client: TestClient) -> None:
    response = client.post("/api/v1/jobs/1/retry", headers={"Authorization": f"Bearer {VIEWER}"})
    assert response.status_code == 403 and "replay jobs.kubernaut.ai" in response.text
    assert client.get("/docs").status_code == 401 and client.get("/openapi.json").status_code == 401


# -- kubernaut token -----------------------------------------------------------------------------------------

def test_kubernaut_token_new_prints_a_token_and_the_entry_that_accepts_it(capsys: pytest.CaptureFixture[str],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import json

    from kubernaut.cli import main

    assert main(["token", "new", "--name", "oncall", "--role", "viewer", "--role", "approver",
                 "--approve-namespace", "payments"]) == 0
    out, err = capsys.readouterr()
    token = err.strip().rsplit(" ", 1)[-1]
    entry = json.loads(out)
    assert token not in out and entry["hash"] == hash_token(token)
    # The printed entry is valid configuration, and it authenticates exactly that token.
    config = load_config({"gateway": {"tokens": [entry]}}).gateway
    principal = asyncio.run(StaticTokenAuthenticator(config.tokens).authenticate(token))
    assert principal is not None and principal.roles == frozenset({Role.VIEWER, Role.APPROVER})

    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["token", "hash"]) == 2 and "too short" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["token", "hash"]) == 2 and "empty" in capsys.readouterr().err
