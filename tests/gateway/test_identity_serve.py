"""Who may call what, on the real Serve app (issue 12): each static token's role decides; the approver is the
authenticated principal, checked in the approval's namespace; /docs needs viewer; /health and /ready reveal
nothing. Tokens: tests/conftest.py (TEST_TOKENS)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import yaml

from tests.plugins.kube_testenv import wait_until

INGEST = {"Authorization": "Bearer test-token-ingest"}
VIEWER = {"Authorization": "Bearer test-token-viewer"}
APPROVER_A = {"Authorization": "Bearer test-token-approver-a"}  # viewer + approver in namespace team-a


def webhook(**labels: str) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "kubernaut", "alerts": [
        {"labels": {"alertname": "KubePodNotReady", "severity": "warning", **labels},
         "startsAt": "2026-11-26T04:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}]}


@pytest_asyncio.fixture(loop_scope="session")
async def anon(serve_app: Any) -> Any:
    async with httpx.AsyncClient(base_url=serve_app.base_url, timeout=30) as client:
        yield client


async def pending_approval(db: asyncpg.Connection, namespace: str) -> int:
    """An approval waiting for a decision on a Deployment in ``namespace`` (rows as the orchestrator writes them;
    no job, so nothing acts on it). ``db`` encodes JSONB itself (kubernaut.storage.database)."""
    target = {"kind": "Deployment", "name": "shop", "namespace": namespace}
    incident = await db.fetchval(
        """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                  environment, priority, severity)
           VALUES ($1, 'Deployment', 'shop', $2, 'kubernetes', ARRAY['KubeHpaMaxedOut'], 'production', 'P1', 'high')
           RETURNING id""", uuid.uuid4().hex, namespace)
    analysis = await db.fetchval(
        """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
           VALUES ($1, 'rules', 'scale_deployment', '{"replicas": 3}', $2, 0.75, 'too few replicas')
           RETURNING id""", incident, target)
    workflow = await db.fetchval(
        "INSERT INTO workflows (incident_id, analysis_id, phase, dry_run) VALUES ($1, $2, 'awaiting_approval', false)"
        " RETURNING id", incident, analysis)
    return await db.fetchval(
        """INSERT INTO approvals (workflow_id, incident_id, action, target, parameters, reason, expires_at)
           VALUES ($1, $2, 'scale_deployment', $3, '{"replicas": 3}', 'policy: production',
                   now() + interval '1 hour') RETURNING id""", workflow, incident, target)


async def test_the_ingest_token_sends_alerts_but_cannot_read_them(anon: httpx.AsyncClient) -> None:
    namespace = f"ing-{uuid.uuid4().hex[:6]}"
    sent = await anon.post("/api/v1/alerts", json=webhook(namespace=namespace, pod="web-0"), headers=INGEST)
    assert sent.status_code == 200, sent.text
    (incident_id,) = sent.json()["incident_ids"]
    for url, permission in (("/api/v1/incidents", "list incidents.kubernaut.ai"),
                            (f"/api/v1/incidents/{incident_id}", "get incidents.kubernaut.ai"),
                            ("/api/v1/alerts", "list alerts.kubernaut.ai"),
                            ("/api/v1/approvals", "list approvals.kubernaut.ai")):
        refused = await anon.get(url, headers=INGEST)
        assert refused.status_code == 403, (url, refused.text)
        assert refused.json()["detail"] == f"forbidden: token:test-ingest needs {permission}"
    # The same incident is readable by a viewer.
    assert (await anon.get(f"/api/v1/incidents/{incident_id}", headers=VIEWER)).status_code == 200
    # A viewer's token cannot send alerts: the webhook needs create alerts.kubernaut.ai.
    refused = await anon.post("/api/v1/alerts", json=webhook(namespace=namespace, pod="web-1"), headers=VIEWER)
    assert refused.status_code == 403 and "create alerts.kubernaut.ai" in refused.text


async def test_a_viewer_cannot_approve(anon: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    approval_id = await pending_approval(db, "team-a")
    for verb in ("approve", "reject"):
        refused = await anon.post(f"/api/v1/approvals/{approval_id}/{verb}", json={"reason": "lgtm"},
                                  headers=VIEWER)
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == ("forbidden: token:test-viewer needs approve approvals.kubernaut.ai "
                                            "in ns/team-a")
    assert await db.fetchval("SELECT status FROM approvals WHERE id = $1", approval_id) == "pending"
    assert await refusals(db, approval_id) == [("token:test-viewer", "forbidden", "approve"),
                                               ("token:test-viewer", "forbidden", "reject")]


async def refusals(db: asyncpg.Connection, approval_id: int) -> list[tuple[str, str, str]]:
    """The audited refusals of decisions on one approval: (actor, refusal, decision), oldest first."""
    rows = await db.fetch("SELECT actor, detail FROM audit_events WHERE event = 'approval.refused' "
                          "AND (detail->>'approval_id')::bigint = $1 ORDER BY id", approval_id)
    return [(r["actor"], r["detail"]["refusal"], r["detail"]["decision"]) for r in rows]


async def test_an_approver_decides_only_in_its_namespaces(anon: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    elsewhere = await pending_approval(db, "team-b")
    refused = await anon.post(f"/api/v1/approvals/{elsewhere}/approve", json={}, headers=APPROVER_A)
    assert refused.status_code == 403 and "approve approvals.kubernaut.ai in ns/team-b" in refused.text
    assert await db.fetchval("SELECT status FROM approvals WHERE id = $1", elsewhere) == "pending"

    mine = await pending_approval(db, "team-a")
    decided = await anon.post(f"/api/v1/approvals/{mine}/reject", json={"reason": "not now"}, headers=APPROVER_A)
    assert decided.status_code == 200, decided.text
    row = await db.fetchrow("SELECT status, decided_by FROM approvals WHERE id = $1", mine)
    assert row["status"] == "rejected" and row["decided_by"] == "token:test-approver-a"


async def test_a_forged_by_is_refused(anon: httpx.AsyncClient, db: asyncpg.Connection) -> None:
    approval_id = await pending_approval(db, "team-a")
    forged = await anon.post(f"/api/v1/approvals/{approval_id}/approve", json={"by": "alice", "reason": "me"},
                             headers=APPROVER_A)
    assert forged.status_code == 422, forged.text
    assert forged.json()["problems"][0]["field"] == "body.by" and "token:test-approver-a" in forged.text
    assert await db.fetchval("SELECT status FROM approvals WHERE id = $1", approval_id) == "pending"
    assert await refusals(db, approval_id) == [("token:test-approver-a", "forged_by", "approve")]
    # Without credentials the body's name is worth nothing either.
    assert (await anon.post(f"/api/v1/approvals/{approval_id}/approve", json={"by": "alice"})).status_code == 401


async def test_docs_need_viewer(anon: httpx.AsyncClient) -> None:
    for path in ("/docs", "/openapi.json"):
        assert (await anon.get(path)).status_code == 401
        assert (await anon.get(path, headers=INGEST)).status_code == 403
        assert (await anon.get(path, headers=VIEWER)).status_code == 200
    schema = (await anon.get("/openapi.json", headers=VIEWER)).json()
    assert "/api/v1/incidents" in schema["paths"] and "/api/v1/alerts" in schema["paths"]


async def test_health_and_ready_reveal_no_configuration(anon: httpx.AsyncClient, serve_app: Any) -> None:
    assert (await anon.get("/health")).json() == {"status": "ok"}
    ready = await anon.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "storage": "ok", "analysis": ready.json()["analysis"]}
    assert ready.json()["analysis"] in ("ok", "degraded", "unknown")
    config = serve_app.config
    for secret in (str(config.storage.data_dir), "127.0.0.1", "postgres", config.analysis.llm_model or "gpt",
                   "kubeconfig", "/"):
        assert secret not in ready.text, secret
    # /metrics stays open and counts refusals (no secrets: only reasons).
    await anon.get("/api/v1/incidents", headers={"Authorization": "Bearer not-a-token"})
    metrics = (await anon.get("/metrics")).text
    assert 'kubernaut_auth_denied_total{reason="invalid"}' in metrics
    assert "test-token" not in metrics


async def test_info_says_how_the_caller_authenticated(anon: httpx.AsyncClient, serve_app: Any) -> None:
    info = (await anon.get("/api/v1/info", headers=VIEWER)).json()["gateway"]
    methods = ["token", "kubernetes"] if serve_app.config.gateway.kubernetes.enabled else ["token"]
    assert info["auth"] == {"methods": methods, "anonymous": False, "allow_anonymous": False}
    assert info["caller"] == {"name": "test-viewer", "method": "token", "roles": ["viewer"]}


async def test_a_ray_worker_reads_the_address_serve_listens_on(serve_app: Any) -> None:
    """What the gateway replica decides anonymous access by (kubernaut.gateway.deployment.serve_http_host): read in
    a Ray worker, as in the replica; None there would refuse every start without authentication."""
    import ray

    from kubernaut.gateway.deployment import serve_http_host

    host = await asyncio.to_thread(ray.get, ray.remote(num_cpus=0)(serve_http_host).remote())
    assert host == "127.0.0.1"


# -- Kubernetes identities through the gateway ----------------------------------------------------------------

ROLES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "12-kubernaut-roles.yaml"


@pytest.fixture(scope="module")
def kube_people(kube_testenv: Any, kube_api_client: Any) -> Iterator[dict[str, str]]:
    """Namespaces A and B; ServiceAccounts in A bound there, with ordinary RoleBindings, to copies of deploy/'s
    kubernaut-approver and kubernaut-viewer (names prefixed: parallel runs never share a ClusterRole). Yields
    {"a", "b", "approver", "viewer"} (the last two: real TokenRequest tokens)."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(kube_api_client), client.RbacAuthorizationV1Api(kube_api_client)
    suffix = uuid.uuid4().hex[:6]
    a, b, prefix = f"gw-a-{suffix}", f"gw-b-{suffix}", f"gw-{suffix}-"
    roles = []
    try:
        for ns in (a, b):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        for doc in yaml.safe_load_all(ROLES_FILE.read_text()):
            if doc and doc["kind"] == "ClusterRole":
                doc["metadata"]["name"] = prefix + doc["metadata"]["name"]
                rbac.create_cluster_role(doc)
                roles.append(doc["metadata"]["name"])
        people = {"a": a, "b": b}
        for account in ("approver", "viewer"):
            core.create_namespaced_service_account(a, client.V1ServiceAccount(
                metadata=client.V1ObjectMeta(name=account)))
            rbac.create_namespaced_role_binding(a, {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": account},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": f"{prefix}kubernaut-{account}"},
                "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": a}]})
            request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(expiration_seconds=600))
            people[account] = core.create_namespaced_service_account_token(account, a, request).status.token
        # RBAC reaches the API server's authorizer asynchronously.
        user = f"system:serviceaccount:{a}:approver"
        review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
            user=user, resource_attributes=client.V1ResourceAttributes(
                verb="approve", resource="approvals", group="kubernaut.ai", namespace=a)))
        auth = client.AuthorizationV1Api(kube_api_client)
        wait_until(lambda: auth.create_subject_access_review(review).status.allowed, timeout=30,
                   what="the approver's RoleBinding")
        yield people
    finally:
        for name in roles:
            rbac.delete_cluster_role(name)
        for ns in (a, b):
            core.delete_namespace(ns)


async def test_a_kubernetes_approver_decides_where_its_rolebinding_is_and_nowhere_else(
    anon: httpx.AsyncClient, db: asyncpg.Connection, kube_people: dict[str, str]
) -> None:
    a, b = kube_people["a"], kube_people["b"]
    approver = {"Authorization": f"Bearer {kube_people['approver']}"}
    actor = f"kubernetes:system:serviceaccount:{a}:approver"
    elsewhere = await pending_approval(db, b)
    refused = await anon.post(f"/api/v1/approvals/{elsewhere}/approve", json={}, headers=approver)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"] == f"forbidden: {actor} needs approve approvals.kubernaut.ai in ns/{b}"

    viewer = {"Authorization": f"Bearer {kube_people['viewer']}"}
    here = await pending_approval(db, a)
    refused = await anon.post(f"/api/v1/approvals/{here}/approve", json={}, headers=viewer)
    assert refused.status_code == 403 and f"approve approvals.kubernaut.ai in ns/{a}" in refused.text
    # Listings span every namespace: a viewer bound in one namespace only is not a cluster-wide viewer.
    listing = await anon.get("/api/v1/approvals", headers=viewer)
    assert listing.status_code == 403 and "needs list approvals.kubernaut.ai" in listing.text

    decided = await anon.post(f"/api/v1/approvals/{here}/reject", json={"reason": "not now"}, headers=approver)
    assert decided.status_code == 200, decided.text
    row = await db.fetchrow("SELECT status, decided_by FROM approvals WHERE id = $1", here)
    assert row["status"] == "rejected" and row["decided_by"] == actor
    # A token the API server does not know is 401, like any bad token.
    garbage = kube_people["approver"][:-4] + "AAAA"
    assert (await anon.get("/api/v1/approvals", headers={"Authorization": f"Bearer {garbage}"})).status_code == 401
