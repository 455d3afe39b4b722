"""Approvals from Slack (issue 13, section 2) on the running Serve app: Slack's Web API is the local peer
(tests/support/slack_peer.py, reached through slack_sdk), button presses are signed with a test signing secret and
POSTed to the real endpoint; Slack users are mapped to Kubernetes users whose rights are ordinary RoleBindings on
the test control plane, checked with SubjectAccessReviews. One application (its own database) for the module."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import yaml

from tests.plugins.kube_testenv import wait_until
from tests.support.live_app import fresh_database
from tests.support.polling import eventually
from tests.support.sinks import free_port
from tests.support.slack_peer import SlackPeer, button_press, signed_interaction

SECRET = "test-signing-secret-0123456789abcdef"
TOKEN = "xoxb-interactions-test"
ADMIN_TOKEN = "slack-test-admin-token"
ROLES_FILE = Path(__file__).resolve().parents[2] / "deploy" / "12-kubernaut-roles.yaml"
PATH = "/api/v1/integrations/slack/interactions"


@pytest.fixture(scope="module")
def people(kube_testenv: Any, kube_api_client: Any) -> Iterator[dict[str, str]]:
    """Namespaces a and b; alice and bob may approve in a (RoleBindings to a copy of kubernaut-approver), carol
    nowhere."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(kube_api_client), client.RbacAuthorizationV1Api(kube_api_client)
    suffix = uuid.uuid4().hex[:6]
    a, b, prefix = f"slack-a-{suffix}", f"slack-b-{suffix}", f"slack-{suffix}-"
    roles = []
    try:
        for ns in (a, b):
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        for doc in yaml.safe_load_all(ROLES_FILE.read_text()):
            if doc and doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "kubernaut-approver":
                doc["metadata"]["name"] = prefix + doc["metadata"]["name"]
                rbac.create_cluster_role(doc)
                roles.append(doc["metadata"]["name"])
        rbac.create_namespaced_role_binding(a, {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "approvers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": roles[0]},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}
                         for name in ("alice@example.com", "bob@example.com")]})
        auth = client.AuthorizationV1Api(kube_api_client)
        for user in ("alice@example.com", "bob@example.com"):
            review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
                user=user, resource_attributes=client.V1ResourceAttributes(
                    verb="approve", resource="approvals", group="kubernaut.ai", namespace=a)))
            wait_until(lambda r=review: auth.create_subject_access_review(r).status.allowed, timeout=30,
                       what=f"{user}'s RoleBinding")
        yield {"a": a, "b": b}
    finally:
        for name in roles:
            rbac.delete_cluster_role(name)
        for ns in (a, b):
            core.delete_namespace(ns)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def slack(serve_app: Any, pg_dsn: str, kube_testenv: Any, people: dict[str, str]
                ) -> AsyncIterator[dict[str, Any]]:
    """The Kubernaut app under /slackapp with a Slack app configured against the peer."""
    from ray import serve

    from kubernaut.app import build_app
    from kubernaut.config import load_config
    from kubernaut.identity.static_tokens import hash_token
    from kubernaut.storage.database import _init_connection

    dsn = await fresh_database(pg_dsn, "t")
    peer = SlackPeer(bot_token=TOKEN, emails={"U_BOB": "bob@example.com"}).start()
    config = load_config({
        "cluster_name": "test", "storage": {"dsn": dsn}, "kubernetes": {"kubeconfig": kube_testenv.admin_kubeconfig},
        "work": {"poll_interval_s": 0.3, "lease_s": 30},
        "gateway": {"kubernetes": {"enabled": True},
                    "tokens": [{"name": "slack-admin", "roles": ["admin"], "hash": hash_token(ADMIN_TOKEN)}]},
        "notifications": {
            "console_url": "http://127.0.0.1:8000/console",
            "slack": {"bot_token": TOKEN, "signing_secret": SECRET, "api_url": peer.api_url, "channel": "#ops",
                      "users": {"U_ALICE": {"user": "alice@example.com"},
                                "bob@example.com": {"user": "bob@example.com"},
                                "U_CAROL": {"user": "carol@example.com"}}},
            # A receiver nobody listens on: it keeps failing, and /ready says so to admins.
            "receivers": [{"name": "broken", "urls": [f"json://127.0.0.1:{free_port()}/hook"]}],
            "route": {"routes": [
                {"match": {"event": ["approval_requested"]}, "receivers": ["broken"], "continue": True},
                {"match": {"event": ["approval_requested"]}, "receivers": ["default"]}]},
            "receiver_health": {"failing_after": 1}},
    })
    await asyncio.to_thread(serve.run, build_app(config), name="slackapp", route_prefix="/slackapp", blocking=False)
    base = f"{serve_app.base_url}/slackapp"
    db = await asyncpg.connect(dsn)
    await _init_connection(db)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            async def ready() -> bool:
                try:
                    return (await http.get("/ready")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(ready, timeout=180, what="slackapp ready")
            yield {"http": http, "db": db, "peer": peer, **people}
    finally:
        await db.close()
        peer.stop()
        await asyncio.to_thread(serve.delete, "slackapp")


async def requested(slack: dict[str, Any], namespace: str) -> tuple[int, Any]:
    """An approval as the orchestrator requests it (rows and its approval.requested notification, no workflow job
    so nothing acts), once its Block Kit card reached Slack: (approval id, the chat.postMessage call)."""
    db: asyncpg.Connection = slack["db"]
    target = {"kind": "Deployment", "name": "shop", "namespace": namespace}
    async with db.transaction():
        incident = await db.fetchval(
            """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                      environment, priority, severity)
               VALUES ($1, 'Deployment', 'shop', $2, 'kubernetes', ARRAY['KubeHpaMaxedOut'], 'production', 'P1',
                       'high') RETURNING id""", uuid.uuid4().hex, namespace)
        analysis = await db.fetchval(
            """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
               VALUES ($1, 'rules', 'scale_deployment', '{"replicas": 3}', $2, 0.75, 'too few replicas')
               RETURNING id""", incident, target)
        workflow = await db.fetchval(
            "INSERT INTO workflows (incident_id, analysis_id, phase, dry_run) VALUES ($1, $2, 'awaiting_approval', "
            "true) RETURNING id", incident, analysis)
        approval = await db.fetchval(
            """INSERT INTO approvals (workflow_id, incident_id, action, target, parameters, reason, expires_at)
               VALUES ($1, $2, 'scale_deployment', $3, '{"replicas": 3}', 'policy: production',
                       now() + interval '1 hour') RETURNING id""", workflow, incident, target)
        note = await db.fetchval(
            "INSERT INTO notifications (incident_id, event, title, body, severity, approval_id) VALUES "
            "($1, 'approval.requested', 'approval needed', 'scale_deployment', 'warning', $2) RETURNING id",
            incident, approval)
        await db.execute("INSERT INTO jobs (kind, ref_id) VALUES ('notify', $1)", note)
    peer: SlackPeer = slack["peer"]

    async def card() -> Any:
        return next((c for c in peer.of("chat.postMessage") if f'"value": "{approval}"' in json.dumps(c.args)), None)

    posted = await eventually(card, timeout=60, what=f"the card of approval {approval}")
    await eventually(lambda: db.fetchval("SELECT ts FROM slack_approval_messages WHERE approval_id = $1", approval),
                     what="the card's ts stored")
    return approval, posted


async def press(slack: dict[str, Any], approval: int, user: str, *, approve: bool = True, secret: str = SECRET,
                timestamp: int | None = None, message_ts: str = "1.000001") -> httpx.Response:
    body, headers = signed_interaction(secret, button_press(approval, user, approve=approve, message_ts=message_ts),
                                       timestamp)
    return await slack["http"].post(PATH, content=body, headers=headers)


async def status(slack: dict[str, Any], approval: int) -> str:
    return await slack["db"].fetchval("SELECT status FROM approvals WHERE id = $1", approval)


async def told(slack: dict[str, Any], user: str, text: str) -> Any:
    peer: SlackPeer = slack["peer"]
    return await eventually(lambda: _async(next((c for c in peer.of("chat.postEphemeral")
                                                 if c.args["user"] == user and text in c.args["text"]), None)),
                            timeout=20, what=f"ephemeral to {user}: {text}")


async def test_approve_from_slack_decides_as_the_mapped_user_and_updates_the_card(slack: dict[str, Any]) -> None:
    approval, card = await requested(slack, slack["a"])
    assert card.token == TOKEN and card.args["channel"] == "#ops"
    assert f"http://127.0.0.1:8000/console/approvals/{approval}" in json.dumps(card.args["blocks"])
    # The requested workflows here are dry-run: the card is a rehearsal's (execution.dry_run_approvals), and its
    # button decides the same way.
    assert "*Dry-run rehearsal*: execution mode is dry-run, so approving changes nothing" in json.dumps(
        card.args["blocks"])
    answer = await press(slack, approval, "U_ALICE")
    assert answer.status_code == 200, answer.text
    row = await slack["db"].fetchrow("SELECT status, decided_by, decided_method, decided_user_agent, decided_at "
                                     "FROM approvals WHERE id = $1", approval)
    assert row["status"] in ("approved", "used") and row["decided_by"] == "kubernetes:alice@example.com"
    assert (row["decided_method"], row["decided_user_agent"]) == ("kubernetes", "slack:U_ALICE")
    peer: SlackPeer = slack["peer"]
    channel, ts = await slack["db"].fetchrow("SELECT channel, ts FROM slack_approval_messages WHERE approval_id = $1",
                                             approval)

    async def updated() -> Any:
        return next((c for c in peer.of("chat.update") if (c.args["channel"], c.args["ts"]) == (channel, ts)), None)

    update = await eventually(updated, timeout=30, what="the card updated in place")
    text = json.dumps(update.args["blocks"])
    assert "*Approved* by kubernetes:alice@example.com at " in text and "kubernaut_approve" not in text
    assert "(dry-run rehearsal: nothing was changed)" in text


async def test_forged_stale_and_replayed_requests_decide_nothing(slack: dict[str, Any]) -> None:
    approval, _ = await requested(slack, slack["a"])
    forged = await press(slack, approval, "U_ALICE", secret="not-the-secret")
    assert forged.status_code == 401
    stale = await press(slack, approval, "U_ALICE", timestamp=int(time.time()) - 301)
    assert stale.status_code == 401
    unsigned = await slack["http"].post(PATH, content=b"payload=%7B%7D",
                                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert unsigned.status_code == 401
    assert await status(slack, approval) == "pending"
    # A signed request is handled once: the same bytes and headers again are refused.
    body, headers = signed_interaction(SECRET, button_press(approval, "U_CAROL"))
    first = await slack["http"].post(PATH, content=body, headers=headers)
    assert first.status_code == 200
    replay = await slack["http"].post(PATH, content=body, headers=headers)
    assert replay.status_code == 409 and "replay" in replay.text
    assert await status(slack, approval) == "pending"


async def test_unauthorized_and_unmapped_users_are_told_and_nothing_happens(slack: dict[str, Any]) -> None:
    approval, _ = await requested(slack, slack["a"])
    assert (await press(slack, approval, "U_CAROL")).status_code == 200
    await told(slack, "U_CAROL", f"not allowed: carol@example.com needs approve in ns/{slack['a']}")
    assert (await press(slack, approval, "U_NOBODY")).status_code == 200
    await told(slack, "U_NOBODY", "not allowed: your Slack user is not mapped")
    elsewhere, _ = await requested(slack, slack["b"])
    assert (await press(slack, elsewhere, "U_ALICE", approve=False)).status_code == 200
    await told(slack, "U_ALICE", f"not allowed: alice@example.com needs approve in ns/{slack['b']}")
    assert await status(slack, approval) == await status(slack, elsewhere) == "pending"
    refusals = await slack["db"].fetch(
        "SELECT actor, detail->>'refusal' AS refusal FROM audit_events WHERE event = 'approval.refused' AND "
        "(detail->>'approval_id')::bigint = ANY($1::bigint[]) ORDER BY id", [approval, elsewhere])
    assert [(r["actor"], r["refusal"]) for r in refusals] == [
        ("kubernetes:carol@example.com", "forbidden"), ("anonymous:slack:U_NOBODY", "unmapped"),
        ("kubernetes:alice@example.com", "forbidden")]


async def test_two_approvers_at_once_make_exactly_one_decision(slack: dict[str, Any]) -> None:
    """Alice (by Slack id) and Bob (by e-mail, through users.info) press Approve together."""
    approval, _ = await requested(slack, slack["a"])
    answers = await asyncio.gather(press(slack, approval, "U_ALICE", message_ts="2.000001"),
                                   press(slack, approval, "U_BOB", message_ts="2.000002"))
    assert [a.status_code for a in answers] == [200, 200]
    decided_by = await slack["db"].fetchval("SELECT decided_by FROM approvals WHERE id = $1", approval)
    assert decided_by in ("kubernetes:alice@example.com", "kubernetes:bob@example.com")
    assert await slack["db"].fetchval("SELECT count(*) FROM approval_decisions WHERE approval_id = $1",
                                      approval) == 1
    loser = "U_BOB" if decided_by.endswith("alice@example.com") else "U_ALICE"
    await told(slack, loser, f"approval {approval} was already approved by {decided_by}")


async def test_a_failing_receiver_is_on_ready_for_admins_only(slack: dict[str, Any]) -> None:
    await requested(slack, slack["a"])
    http: httpx.AsyncClient = slack["http"]

    async def degraded() -> Any:
        body = (await http.get("/ready")).json()
        return body if body.get("notifications") == "degraded" else None

    anonymous = await eventually(degraded, timeout=60, what="notifications degraded on /ready")
    assert "detail" not in anonymous and "broken" not in json.dumps(anonymous)
    admin = (await http.get("/ready", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})).json()
    (failing,) = admin["detail"]["failing_receivers"]
    assert failing["receiver"] == "broken" and failing["failures_in_a_row"] >= 1
    assert "json" in failing["last_error"] and "127.0.0.1" not in failing["last_error"]


async def test_without_a_signing_secret_the_endpoint_refuses(serve_app: Any) -> None:
    """The session app has no Slack app configured: even a well-formed signed press is refused (fail closed)."""
    body, headers = signed_interaction(SECRET, button_press(1, "U_ALICE"))
    async with httpx.AsyncClient(base_url=serve_app.base_url, timeout=30) as http:
        refused = await http.post(PATH, content=body, headers=headers)
    assert refused.status_code == 401 and "signing_secret is not set" in refused.text


async def _async(value: Any) -> Any:
    return value
