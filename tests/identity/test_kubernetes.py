"""Kubernetes identities (issue 12, method 2) against the real test control plane: real ServiceAccounts and
their TokenRequest tokens, deploy/'s ClusterRoles bound with ordinary RoleBindings, and the gateway checking
them with TokenReview and SubjectAccessReview under its own ServiceAccount (bound to deploy/'s
kubernaut-gateway-auth, nothing more). Plus the pure parts: the manifests, the cache, the claim rule."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from kubernaut.cluster.api import ClusterAPI
from kubernaut.config.auth import KubernetesAuthConfig
from kubernaut.identity.kubernetes import KubernetesAuthenticator, KubernetesAuthorizer, TTLCache
from kubernaut.models.principal import API_GROUP, AuthUnavailable, Permission, Principal
from tests.deploy.manifests import DEPLOY, load_docs
from tests.plugins.kube_testenv import KubeTestEnv, wait_until
from tests.support.sinks import free_port

ROLES_FILE = DEPLOY / "12-kubernaut-roles.yaml"
GATEWAY_AUTH_FILE = DEPLOY / "11-gateway-auth.yaml"
READ_VERBS = ("get", "list")


def _rules(name: str) -> set[tuple[str, str]]:
    (role,) = [d for d in load_docs(ROLES_FILE) if d["metadata"]["name"] == name]
    out = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [API_GROUP], rule
        out |= {(verb, resource) for verb in rule["verbs"] for resource in rule["resources"]}
    return out


# -- the manifests ------------------------------------------------------------------------------


def test_cluster_roles_phrase_the_role_table_in_rbac() -> None:
    """kubernaut-viewer reads what the viewer role reads (kubernaut/identity/roles.py), approver adds approve on
    approvals, admin holds everything of kubernaut.ai and nothing outside it."""
    from kubernaut.identity.roles import VIEWER_READS

    viewer = {(verb, resource) for resource in VIEWER_READS for verb in READ_VERBS} | {("create", "analyses")}
    assert _rules("kubernaut-viewer") == viewer
    assert _rules("kubernaut-approver") == viewer | {("approve", "approvals")}
    assert _rules("kubernaut-admin") == {("*", "*")}
    assert {d["kind"] for d in load_docs(ROLES_FILE)} == {"ClusterRole"}  # granted by the admin's bindings only


def test_only_the_gateway_account_may_create_reviews() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in load_docs(GATEWAY_AUTH_FILE)}
    assert set(docs) == {("ClusterRole", "kubernaut-gateway-auth"), ("ClusterRoleBinding", "kubernaut-gateway-auth")}
    assert docs[("ClusterRole", "kubernaut-gateway-auth")]["rules"] == [
        {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
        {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    ]
    binding = docs[("ClusterRoleBinding", "kubernaut-gateway-auth")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kubernaut-gateway", "namespace": "kubernaut"}]
    assert binding["roleRef"]["name"] == "kubernaut-gateway-auth"
    for path in DEPLOY.rglob("*.yaml"):  # no other file grants the reviews
        if path != GATEWAY_AUTH_FILE:
            text = path.read_text()
            assert "tokenreviews" not in text and "subjectaccessreviews" not in text, path


# -- pure parts -----------------------------------------------------------------------------------


def test_cache_is_bounded_in_time_and_size() -> None:
    now = [0.0]
    cache: TTLCache[str] = TTLCache(2, clock=lambda: now[0])
    cache.put("a", "A", 10)
    cache.put("b", "B", 1)
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.put("c", "C", 10)
    assert len(cache) == 2 and cache.get("b") != "B" and cache.get("a") == "A"
    now[0] = 10.0
    assert cache.get("a") != "A" and cache.get("c") != "C"
    TTLCache(0).put("x", "X", 10)
    cache.put("z", "Z", 0)
    assert cache.get("z") != "Z"


def test_config_bounds() -> None:
    for bad in ({"cache_ttl_s": 301}, {"cache_ttl_s": -1}, {"cache_size": 2_000_000}, {"timeout_s": 0},
                {"cache_ttl_s": 1, "negative_cache_ttl_s": 2}, {"claim": "some"}, {"typo": True}):
        with pytest.raises(ValidationError):
            KubernetesAuthConfig(**bad)
    assert KubernetesAuthConfig().enabled is False and KubernetesAuthConfig().claim == "jwt"


def _closed_port_api() -> ClusterAPI:
    from kubernetes import client

    cfg = client.Configuration(host=f"https://127.0.0.1:{free_port()}")
    cfg.api_key = {"authorization": "Bearer gateway"}
    return ClusterAPI(client.ApiClient(cfg), timeout_s=3)


def _fake_jwt(iss: str = "https://kubernetes.default.svc", **claims: Any) -> str:
    return jwt.encode({"iss": iss, "sub": "x", **claims}, "not-the-signing-key-of-anything-real", algorithm="HS256")


async def test_only_jwt_shaped_tokens_are_claimed_and_others_never_leave_the_process() -> None:
    """With the API server unreachable, a claimed token is AuthUnavailable; an unclaimed one is None (it
    would be AuthUnavailable too had it been sent)."""
    api = _closed_port_api()
    auth = KubernetesAuthenticator(api, KubernetesAuthConfig(enabled=True))
    for not_mine in ("s3cr3t-static-token", "a.b", "", "x" * 40):
        assert await auth.authenticate(not_mine) is None
    with pytest.raises(AuthUnavailable):
        await auth.authenticate(_fake_jwt())
    only = KubernetesAuthenticator(api, KubernetesAuthConfig(enabled=True, issuers=["kubernetes/serviceaccount"]))
    assert await only.authenticate(_fake_jwt(iss="https://login.example.com")) is None
    with pytest.raises(AuthUnavailable):
        await only.authenticate(_fake_jwt(iss="kubernetes/serviceaccount"))
    anything = KubernetesAuthenticator(api, KubernetesAuthConfig(enabled=True, claim="any"))
    with pytest.raises(AuthUnavailable):
        await anything.authenticate("s3cr3t-static-token")
    assert await KubernetesAuthenticator(api, KubernetesAuthConfig(enabled=False)).authenticate(_fake_jwt()) is None


async def test_unreachable_api_server_is_unavailable_and_never_cached() -> None:
    api = _closed_port_api()
    config = KubernetesAuthConfig(enabled=True, cache_ttl_s=60, negative_cache_ttl_s=60)
    auth, authz = KubernetesAuthenticator(api, config), KubernetesAuthorizer(api, config)
    principal = Principal(name="system:serviceaccount:a:b", method="kubernetes", groups=("system:authenticated",))
    for _ in range(2):  # the second try asks again: an outage is never remembered as an answer
        with pytest.raises(AuthUnavailable):
            await auth.authenticate(_fake_jwt())
        with pytest.raises(AuthUnavailable):
            await authz.allowed(principal, Permission(verb="approve", resource="approvals", namespace="a"))
    assert len(auth._cache) == 0 and len(authz._cache) == 0


class _FailingApiServer:
    """An API server that answers every request with ``status`` and a Kubernetes Status body."""

    def __init__(self, status: int) -> None:
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                   "reason": "InternalError", "message": "etcd is down", "code": status}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_api_server_errors_are_unavailable(status: int) -> None:
    from kubernetes import client

    server = _FailingApiServer(status)
    try:
        api = ClusterAPI(client.ApiClient(client.Configuration(host=server.url)), timeout_s=3)
        config = KubernetesAuthConfig(enabled=True)
        with pytest.raises(AuthUnavailable):
            await KubernetesAuthenticator(api, config).authenticate(_fake_jwt())
        principal = Principal(name="u", method="kubernetes")
        with pytest.raises(AuthUnavailable):
            await KubernetesAuthorizer(api, config).allowed(principal, Permission(verb="get", resource="incidents"))
        assert server.requests == 2
    finally:
        server.close()


# -- against the real control plane ------------------------------------------------------------


@dataclass
class World:
    env: KubeTestEnv
    a: str  # the namespace where the approver (and the viewer) are bound
    b: str  # a namespace where nobody is bound
    prefix: str  # cluster-scoped names are prefixed so parallel runs never collide
    gateway_api: ClusterAPI  # the gateway's own credentials: a ServiceAccount bound to kubernaut-gateway-auth
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def rightless_token(self) -> str:
        """The API server's static-file token of the user "nobody" (not a JWT)."""
        return Path(self.env.rightless_kubeconfig).read_text().split("token: ")[1].split()[0]

    def user(self, account: str) -> str:
        return f"system:serviceaccount:{self.a}:{account}"


def _token(core: Any, namespace: str, account: str, audiences: list[str] | None = None) -> str:
    from kubernetes import client

    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=audiences or [], expiration_seconds=600))
    return core.create_namespaced_service_account_token(account, namespace, request).status.token


def _api_as(env: KubeTestEnv, token: str | None = None, kubeconfig: str | None = None) -> ClusterAPI:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig or env.admin_kubeconfig, client_configuration=cfg)
    if token:  # the kubeconfig's server and CA, this token (and no hook reloading the kubeconfig's own)
        cfg.api_key = {"BearerToken": f"Bearer {token}"}
        cfg.refresh_api_key_hook = None
    return ClusterAPI(client.ApiClient(cfg), timeout_s=10)


def _admin_allows(admin: Any, user: str, verb: str, resource: str, namespace: str | None, group: str = API_GROUP
                  ) -> bool:
    from kubernetes import client

    attributes = client.V1ResourceAttributes(verb=verb, resource=resource, group=group, namespace=namespace)
    spec = client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attributes)
    review = client.V1SubjectAccessReview(spec=spec)
    return client.AuthorizationV1Api(admin).create_subject_access_review(review).status.allowed


@pytest.fixture(scope="module")
def world(kube_testenv: KubeTestEnv, kube_api_client: Any) -> Iterator[World]:
    from kubernetes import client

    core = client.CoreV1Api(kube_api_client)
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    suffix = uuid.uuid4().hex[:6]
    a, b, prefix = f"ib-a-{suffix}", f"ib-b-{suffix}", f"ib-{suffix}-"
    roles: list[str] = []
    bindings: list[str] = []
    try:
        for ns in (a, b):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        for account in ("gateway", "approver", "viewer", "admin", "doomed", "fleeting"):
            core.create_namespaced_service_account(a, client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name=account)))
        for doc in [*load_docs(ROLES_FILE), *load_docs(GATEWAY_AUTH_FILE)]:
            doc = copy.deepcopy(doc)
            doc["metadata"]["name"] = prefix + doc["metadata"]["name"]
            if doc["kind"] == "ClusterRole":
                rbac.create_cluster_role(doc)
                roles.append(doc["metadata"]["name"])
            else:  # the gateway's binding, to the test's gateway account
                doc["roleRef"]["name"] = prefix + doc["roleRef"]["name"]
                doc["subjects"] = [{"kind": "ServiceAccount", "name": "gateway", "namespace": a}]
                rbac.create_cluster_role_binding(doc)
                bindings.append(doc["metadata"]["name"])
        # What an admin does to grant Kubernaut rights: an ordinary RoleBinding per namespace.
        for account, role in (("approver", "kubernaut-approver"), ("viewer", "kubernaut-viewer"),
                              ("admin", "kubernaut-admin"), ("fleeting", "kubernaut-approver")):
            rbac.create_namespaced_role_binding(a, {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": account},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": prefix + role},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": a}]})
        gateway_token = _token(core, a, "gateway")
        w = World(kube_testenv, a, b, prefix, _api_as(kube_testenv, gateway_token))
        for account in ("approver", "viewer", "admin", "doomed", "fleeting"):
            w.tokens[account] = _token(core, a, account)
        # RBAC reaches the authorizer's cache asynchronously.
        wait_until(lambda: all(_admin_allows(kube_api_client, w.user(acc), "approve", "approvals", a)
                               for acc in ("approver", "fleeting", "admin")), timeout=30, what="the RoleBindings")
        wait_until(lambda: _admin_allows(kube_api_client, w.user("gateway"), "create", "tokenreviews", None,
                                         "authentication.k8s.io"), timeout=30, what="the gateway's binding")
        yield w
    finally:
        for name in bindings:
            rbac.delete_cluster_role_binding(name)
        for name in roles:
            rbac.delete_cluster_role(name)
        for ns in (a, b):
            try:
                core.delete_namespace(ns)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


def _config(**overrides: Any) -> KubernetesAuthConfig:
    return KubernetesAuthConfig(**{"enabled": True, **overrides})


async def test_tokenreview_accepts_real_serviceaccount_tokens_and_rejects_garbage(world: World,
                                                                                   kube_api_client: Any) -> None:
    from kubernetes import client

    auth = KubernetesAuthenticator(world.gateway_api, _config())
    principal = await auth.authenticate(world.tokens["approver"])
    assert principal is not None
    assert principal.method == "kubernetes" and principal.name == world.user("approver")
    assert principal.actor == f"kubernetes:{world.user('approver')}"
    sa = client.CoreV1Api(kube_api_client).read_namespaced_service_account("approver", world.a)
    assert principal.kube_uid == sa.metadata.uid
    assert {"system:serviceaccounts", f"system:serviceaccounts:{world.a}", "system:authenticated"} <= set(
        principal.groups)
    assert principal.roles == frozenset()  # its rights are asked per permission (SubjectAccessReview)

    header, payload, _ = world.tokens["approver"].split(".")
    for garbage in (_fake_jwt(), f"{header}.{payload}.AAAA", world.tokens["approver"][:-4] + "AAAA"):
        with pytest.raises(PermissionError) as refused:
            await auth.authenticate(garbage)
        assert str(refused.value) == "invalid or expired credentials"

    # claim "any": tokens of the API server's other authenticators too (here its static token file).
    nobody = world.rightless_token
    assert await auth.authenticate(nobody) is None  # not JWT-shaped: not sent by default
    anything = KubernetesAuthenticator(world.gateway_api, _config(claim="any"))
    found = await anything.authenticate(nobody)
    assert found is not None and found.name == "nobody"
    with pytest.raises(PermissionError):
        await anything.authenticate("0123456789abcdef0123456789abcdef")


async def test_audiences_are_checked(world: World, kube_api_client: Any) -> None:
    from kubernetes import client

    core = client.CoreV1Api(kube_api_client)
    scoped = KubernetesAuthenticator(world.gateway_api, _config(audiences=["kubernaut"]))
    for_us = _token(core, world.a, "viewer", audiences=["kubernaut"])
    principal = await scoped.authenticate(for_us)
    assert principal is not None and principal.name == world.user("viewer")
    with pytest.raises(PermissionError):  # a token for the API server is not a token for Kubernaut
        await scoped.authenticate(world.tokens["viewer"])
    with pytest.raises(PermissionError):  # and vice versa
        await KubernetesAuthenticator(world.gateway_api, _config()).authenticate(for_us)


async def test_deleted_account_token_is_refused_once_the_cache_expires(world: World, kube_api_client: Any) -> None:
    from kubernetes import client

    token = world.tokens["doomed"]
    now = [0.0]
    cached = KubernetesAuthenticator(world.gateway_api, _config(cache_ttl_s=30, negative_cache_ttl_s=5),
                                     clock=lambda: now[0])
    assert await cached.authenticate(token) is not None
    client.CoreV1Api(kube_api_client).delete_namespaced_service_account("doomed", world.a)
    uncached = KubernetesAuthenticator(world.gateway_api, _config(cache_size=0))

    async def refused() -> bool:
        try:
            await uncached.authenticate(token)
        except PermissionError:
            return True
        return False

    deadline = time.monotonic() + 30
    while not await refused():
        assert time.monotonic() < deadline, "the API server still accepts the deleted account's token"
        await asyncio.sleep(0.2)
    # Within its TTL the cached answer stands (that is what the cache is for, and why its TTL is short) ...
    now[0] = 29.0
    assert await cached.authenticate(token) is not None
    now[0] = 30.0
    with pytest.raises(PermissionError):  # ... then the API server is asked again and refuses
        await cached.authenticate(token)
    with pytest.raises(PermissionError):  # remembered briefly
        await cached.authenticate(token)
    assert len(cached._cache) == 1


async def test_subject_access_reviews_follow_the_role_bindings(world: World) -> None:
    from kubernaut.identity.roles import VIEWER_READS

    auth = KubernetesAuthenticator(world.gateway_api, _config())
    authz = KubernetesAuthorizer(world.gateway_api, _config())
    approver = await auth.authenticate(world.tokens["approver"])
    viewer = await auth.authenticate(world.tokens["viewer"])
    admin = await auth.authenticate(world.tokens["admin"])
    assert approver and viewer and admin

    def approve(ns: str | None) -> Permission:
        return Permission(verb="approve", resource="approvals", namespace=ns)

    assert await authz.allowed(approver, approve(world.a))
    assert not await authz.allowed(approver, approve(world.b))  # bound in A only
    assert not await authz.allowed(approver, approve(None))  # a RoleBinding covers no cluster-scoped target
    assert not await authz.allowed(viewer, approve(world.a))  # a viewer cannot approve
    for resource in sorted(VIEWER_READS):
        for verb in READ_VERBS:
            assert await authz.allowed(viewer, Permission(verb=verb, resource=resource, namespace=world.a)), resource
            assert not await authz.allowed(viewer, Permission(verb=verb, resource=resource, namespace=world.b))
    assert await authz.allowed(viewer, Permission(verb="create", resource="analyses", namespace=world.a))
    for verb, resource in (("replay", "jobs"), ("reload", "policy"), ("create", "alerts"), ("delete", "incidents")):
        assert not await authz.allowed(approver, Permission(verb=verb, resource=resource, namespace=world.a))
        assert await authz.allowed(admin, Permission(verb=verb, resource=resource, namespace=world.a))
        assert not await authz.allowed(admin, Permission(verb=verb, resource=resource, namespace=world.b))

    # Only Kubernetes principals are this authorizer's, and only in its own cluster.
    impostor = Principal(name=world.user("admin"), method="oidc", groups=admin.groups)
    assert not await authz.allowed(impostor, approve(world.a))
    assert not await authz.allowed(approver, Permission(verb="approve", resource="approvals", namespace=world.a,
                                                        cluster="elsewhere"))
    here = KubernetesAuthorizer(world.gateway_api, _config(cluster="prod-eu"))
    assert await here.allowed(approver, Permission(verb="approve", resource="approvals", namespace=world.a,
                                                   cluster="prod-eu"))


async def test_review_answers_are_cached_briefly(world: World, kube_api_client: Any) -> None:
    from kubernetes import client

    auth = KubernetesAuthenticator(world.gateway_api, _config())
    fleeting = await auth.authenticate(world.tokens["fleeting"])
    assert fleeting is not None
    now = [0.0]
    authz = KubernetesAuthorizer(world.gateway_api, _config(cache_ttl_s=10, negative_cache_ttl_s=2),
                                 clock=lambda: now[0])
    in_a = Permission(verb="approve", resource="approvals", namespace=world.a)
    in_b = Permission(verb="approve", resource="approvals", namespace=world.b)
    assert await authz.allowed(fleeting, in_a)
    assert not await authz.allowed(fleeting, in_b)
    rbac = client.RbacAuthorizationV1Api(kube_api_client)
    rbac.delete_namespaced_role_binding("fleeting", world.a)
    rbac.create_namespaced_role_binding(world.b, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "fleeting"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": world.prefix + "kubernaut-approver"},
        "subjects": [{"kind": "ServiceAccount", "name": "fleeting", "namespace": world.a}]})
    wait_until(lambda: not _admin_allows(kube_api_client, fleeting.name, "approve", "approvals", world.a)
               and _admin_allows(kube_api_client, fleeting.name, "approve", "approvals", world.b),
               timeout=30, what="the moved RoleBinding to take effect")
    now[0] = 1.9
    assert await authz.allowed(fleeting, in_a)  # the cached allow, although the API server now says no
    assert not await authz.allowed(fleeting, in_b)  # the cached refusal
    now[0] = 2.0
    assert await authz.allowed(fleeting, in_b)  # a refusal is kept shorter: the new grant is seen first
    now[0] = 9.9
    assert await authz.allowed(fleeting, in_a)
    now[0] = 10.0
    assert not await authz.allowed(fleeting, in_a)  # expired: asked again


async def test_a_gateway_without_review_rights_is_unavailable_not_allowed(world: World) -> None:
    """The rightless user may not create reviews (403 to the gateway): that is 503 for the caller."""
    rightless = _api_as(world.env, kubeconfig=world.env.rightless_kubeconfig)
    with pytest.raises(AuthUnavailable):
        await KubernetesAuthenticator(rightless, _config()).authenticate(world.tokens["approver"])
    principal = Principal(name=world.user("approver"), method="kubernetes")
    with pytest.raises(AuthUnavailable):
        await KubernetesAuthorizer(rightless, _config()).allowed(
            principal, Permission(verb="approve", resource="approvals", namespace=world.a))
