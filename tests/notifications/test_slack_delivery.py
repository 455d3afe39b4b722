"""The notifications deployment (its class, run without Serve, on real PostgreSQL) talking to the local Slack peer
through slack_sdk: the approval card, one thread per incident, the in-place update once decided through the real
decision code; routing with a repeat interval; escalation timing while Slack is down."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from kubernaut.config.settings import load_config
from kubernaut.models.principal import Principal
from kubernaut.notifications.deployment import NotificationService
from kubernaut.orchestration import approvals as approval_rules
from kubernaut.storage import notifications
from tests.support.polling import eventually
from tests.support.sinks import HttpSink, free_port
from tests.support.slack_peer import SlackPeer

TOKEN = "xoxb-delivery-test"


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    """A JSON sink of this test's own (every fresh database numbers its approvals from 1 again)."""
    receiver = HttpSink().start()
    yield receiver
    receiver.stop()


@asynccontextmanager
async def service(config_args: dict[str, Any]) -> AsyncIterator[Any]:
    cls: Any = NotificationService.func_or_class
    svc = cls.__new__(cls)
    await cls.__init__(svc, load_config(config_args))
    try:
        yield svc
    finally:
        await svc.worker.stop()
        await svc.db.close()


async def approval_request(svc: Any, namespace: str = "payments", ttl_s: float = 900) -> tuple[int, int]:
    """(incident id, approval id): rows as the orchestrator writes them, and its approval.requested notification."""
    target = {"kind": "Deployment", "name": "shop", "namespace": namespace}
    async with svc.db.pool.acquire() as conn, conn.transaction():
        incident = await conn.fetchval(
            """INSERT INTO incidents (fingerprint, target_kind, target_name, target_namespace, target_source, signals,
                                      environment, priority, severity)
               VALUES ($1, 'Deployment', 'shop', $2, 'kubernetes', ARRAY['KubeHpaMaxedOut'], 'production', 'P1',
                       'high') RETURNING id""", uuid.uuid4().hex, namespace)
        analysis = await conn.fetchval(
            """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause)
               VALUES ($1, 'rules', 'scale_deployment', '{"replicas": 3}', $2, 0.75, 'too few replicas <!channel>')
               RETURNING id""", incident, target)
        workflow = await conn.fetchval(
            "INSERT INTO workflows (incident_id, analysis_id, phase, dry_run) VALUES ($1, $2, 'awaiting_approval', "
            "true) RETURNING id", incident, analysis)
        approval = await conn.fetchval(
            """INSERT INTO approvals (workflow_id, incident_id, action, target, parameters, reason, dry_run_diff,
                                      expires_at)
               VALUES ($1, $2, 'scale_deployment', $3, '{"replicas": 3}', 'policy: production needs approval',
                       $4, now() + make_interval(secs => $5)) RETURNING id""",
            workflow, incident, target, "--- a\n+++ b\n-  replicas: 1\n+  replicas: 3\n", float(ttl_s))
        await notifications.create(conn, incident, "approval.requested", severity="warning", approval_id=approval,
                                   title="[kubernaut] approval needed: scale_deployment on Deployment/shop",
                                   body=f"Incident #{incident}: too few replicas")
    svc.worker.wake()
    return incident, approval


async def notify(svc: Any, incident: int, event: str, title: str) -> int:
    async with svc.db.pool.acquire() as conn, conn.transaction():
        note = await notifications.create(conn, incident, event, title=title, body=f"{title} (body)")
    svc.worker.wake()
    return note


async def notification_row(svc: Any, note_id: int) -> asyncpg.Record:
    return await svc.db.pool.fetchrow("SELECT status, deliveries, error FROM notifications WHERE id = $1", note_id)


async def test_one_thread_per_incident_and_the_card_updated_in_place(fresh_dsn: str) -> None:
    peer = SlackPeer(bot_token=TOKEN).start()
    try:
        async with service({"storage": {"dsn": fresh_dsn}, "work": {"poll_interval_s": 0.2},
                            "notifications": {"console_url": "https://kubernaut.example.com/console",
                                              "slack": {"bot_token": TOKEN, "api_url": peer.api_url,
                                                        "channel": "#ops"}}}) as svc:
            incident, approval = await approval_request(svc)
            (card,) = await eventually(lambda: _async(peer.of("chat.postMessage") or None), what="approval card")
            assert card.token == TOKEN and card.args["channel"] == "#ops" and "thread_ts" not in card.args
            text = json.dumps(card.args["blocks"])
            assert f'"value": "{approval}"' in text and "kubernaut_approve" in text and "kubernaut_reject" in text
            assert f"https://kubernaut.example.com/console/approvals/{approval}" in text
            assert "&lt;!channel&gt;" in text and "<!channel>" not in text  # the root cause is untrusted text
            thread = await eventually(lambda: svc.db.pool.fetchrow(
                "SELECT channel, ts FROM slack_threads WHERE incident_id = $1", incident), what="the thread stored")
            first_ts = thread["ts"]
            await eventually(lambda: svc.db.pool.fetchrow(
                "SELECT ts FROM slack_approval_messages WHERE approval_id = $1", approval), what="the card stored")

            # A later event of the same incident replies in its thread.
            await notify(svc, incident, "workflow.failed", "[kubernaut] scale_deployment on shop: failed")
            reply = await eventually(lambda: _async(next((c for c in peer.of("chat.postMessage")
                                                          if "failed" in c.args["text"]), None)), what="reply")
            assert reply.args["thread_ts"] == first_ts

            # Decided through the real decision code: the card is updated in place, without buttons.
            await approval_rules.commit(svc.db.pool, approval, True,
                                        Principal(name="alice@example.com", method="kubernetes"),
                                        approval_rules.DecisionSource(user_agent="slack:U1"), "lgtm", None,
                                        required=1)
            svc.worker.wake()
            (update,) = await eventually(lambda: _async(peer.of("chat.update") or None), what="in-place update")
            assert update.args["ts"] == first_ts and update.args["channel"] == card_channel(peer, card)
            updated = json.dumps(update.args["blocks"])
            assert "*Approved* by kubernetes:alice@example.com at " in updated and "kubernaut_approve" not in updated

            # Another incident starts its own thread.
            other, _ = await approval_request(svc, namespace="shop")
            cards = await eventually(lambda: _async(len(peer.of("chat.postMessage")) >= 4 or None), what="2nd card")
            assert cards and "thread_ts" not in peer.of("chat.postMessage")[-1].args
            assert other != incident
    finally:
        peer.stop()


def card_channel(peer: SlackPeer, call: Any) -> str:
    """The channel id the peer answered for a posted message (what chat.update must name)."""
    return peer._answer("chat.postMessage", call.args, TOKEN)["channel"]


async def test_slack_down_the_approval_stays_and_the_escalation_route_fires(fresh_dsn: str, sink: HttpSink) -> None:
    """Slack unreachable: the approval stays pending, its Slack delivery retries and the receiver is reported
    failing; after escalate_after_s the escalation goes to the pager route, and again before expiry."""
    down = f"http://127.0.0.1:{free_port()}/api/"
    async with service({"storage": {"dsn": fresh_dsn},
                        "work": {"poll_interval_s": 0.2, "kinds": {"notify": {"backoff_initial_s": 0.3,
                                                                              "backoff_max_s": 0.5}}},
                        "notifications": {
                            "console_url": "https://kubernaut.example.com/console",
                            "slack": {"bot_token": TOKEN, "api_url": down, "channel": "#ops", "timeout_s": 2},
                            "receivers": [{"name": "pager", "urls": [sink.apprise_url]}],
                            "route": {"routes": [{"match": {"event": ["escalated", "expired"]},
                                                  "receivers": ["pager"]}]},
                            "escalation": {"escalate_after_s": 1.5, "remind_before_expiry_s": 2},
                            "receiver_health": {"failing_after": 1}}}) as svc:
        started = time.monotonic()
        incident, approval = await approval_request(svc, ttl_s=6)

        def escalations() -> list[dict[str, Any]]:
            return [m for m in sink.received if f"approval {approval} " in str(m.get("title"))]

        await eventually(lambda: _async(escalations() or None), timeout=20, what="escalation at the pager")
        assert time.monotonic() - started >= 1.5, "escalated before escalate_after_s"
        first = escalations()[0]
        assert "ESCALATED" in first["title"]
        # Teams, e-mail and PagerDuty (apprise) carry the console's approval page: approving happens there.
        assert f"https://kubernaut.example.com/console/approvals/{approval}" in first["message"]
        await eventually(lambda: _async(len(escalations()) >= 2 or None), timeout=20, what="reminder")
        assert "REMINDER" in escalations()[1]["title"] and time.monotonic() - started >= 4.0
        assert await svc.db.pool.fetchval("SELECT status FROM approvals WHERE id = $1", approval) == "pending"
        request = await svc.db.pool.fetchrow(
            "SELECT status, deliveries, error, attempts FROM notifications WHERE approval_id = $1 "
            "AND event = 'approval.requested'", approval)
        assert request["status"] == "retrying" and request["deliveries"] == {"default#slack": "failed"}
        assert "slack chat.postMessage" in request["error"] and TOKEN not in request["error"]
        failing = await notifications.failing_receivers(svc.db.pool, 1)
        assert [r.receiver for r in failing] == ["default"]
        # The escalations themselves never went to Slack's (default) route: the pager route took them.
        rows = await svc.db.pool.fetch("SELECT deliveries FROM notifications WHERE approval_id = $1 AND event IN "
                                       "('approval.escalated', 'approval.reminder')", approval)
        assert [r["deliveries"] for r in rows] == [{"pager#0": "sent"}] * 2
        assert incident


async def test_a_route_repeat_interval_suppresses_repeats_of_a_group(fresh_dsn: str, sink: HttpSink) -> None:
    async with service({"storage": {"dsn": fresh_dsn}, "work": {"poll_interval_s": 0.2},
                        "notifications": {
                            "receivers": [{"name": "mail", "urls": [sink.apprise_url]}],
                            "route": {"routes": [{"match": {"event": ["failed"]}, "receivers": ["mail"],
                                                  "group_by": ["namespace"], "repeat_interval_s": 3600}]}}}) as svc:
        incident, _ = await approval_request(svc)
        first = await notify(svc, incident, "workflow.failed", f"[kubernaut] failed #{incident} a")
        await eventually(lambda: _status(svc, first, "sent"), what="first failure sent")
        second = await notify(svc, incident, "workflow.failed", f"[kubernaut] failed #{incident} b")
        row = await eventually(lambda: _status(svc, second, "suppressed"), what="second suppressed")
        assert row["deliveries"] == {"mail": "suppressed"}
        assert not [m for m in sink.received if m.get("title") == f"[kubernaut] failed #{incident} b"]
        assert [m for m in sink.received if m.get("title") == f"[kubernaut] failed #{incident} a"]


async def run_to_rest(engine: Any, workflow_id: int) -> str:
    """Advance the workflow until it waits or ends (the job worker's loop, minus its timing)."""
    from kubernaut.storage.jobs import Reschedule

    for _ in range(20):
        try:
            await engine.advance(workflow_id)
        except Reschedule:
            pass
        current = await engine.db.pool.fetchval("SELECT phase FROM workflows WHERE id = $1", workflow_id)
        if current not in ("pending", "executing", "verifying"):
            return current
    raise AssertionError("the workflow did not come to rest")


async def _status(svc: Any, note_id: int, *states: str) -> asyncpg.Record | None:
    row = await notification_row(svc, note_id)
    return row if row is not None and row["status"] in states else None


async def _async(value: Any) -> Any:
    return value


async def test_the_orchestrators_request_escalates_then_expires_on_slack_and_the_pager(fresh_dsn: str,
                                                                                      sink: HttpSink) -> None:
    """The real workflow engine asks for approval; the notifications deployment posts the card, escalates it to
    the pager after escalate_after_s, and when the engine expires it the card loses its buttons and the expiry
    pages too."""
    from kubernaut.orchestration.engine import WorkflowEngine
    from kubernaut.storage.database import Database
    from tests.support.scripted_executor import ScriptedExecutor, seed

    peer = SlackPeer(bot_token=TOKEN).start()
    args = {"storage": {"dsn": fresh_dsn}, "execution": {"mode": "live"}, "work": {"poll_interval_s": 0.2},
            "orchestration": {"stabilization_s": 0, "approval_ttl_s": 10, "autonomy_min_cases": 0,
                              "autonomy_min_lower_bound": 0},
            "notifications": {"slack": {"bot_token": TOKEN, "api_url": peer.api_url, "channel": "#ops"},
                              "receivers": [{"name": "pager", "urls": [sink.apprise_url]}],
                              "route": {"routes": [{"match": {"event": ["escalated", "expired"]},
                                                    "receivers": ["pager"], "continue": True},
                                                   {"match": {"event": ["expired"]}, "receivers": ["default"]}]},
                              "escalation": {"escalate_after_s": 1}}}
    config = load_config(args)
    db = await Database.connect(config.storage)
    try:
        engine = WorkflowEngine(db, ScriptedExecutor(db), config)
        workflow_id = await engine.start(await seed(db, environment="production", confidence=0.75))
        assert await run_to_rest(engine, workflow_id) == "awaiting_approval"
        approval = await db.pool.fetchval("SELECT id FROM approvals WHERE workflow_id = $1", workflow_id)
        async with service(args) as svc:
            svc.worker.wake()
            card = await eventually(lambda: _async(next((c for c in peer.of("chat.postMessage")
                                                         if f'"value": "{approval}"' in json.dumps(c.args)), None)),
                                    what="the engine's approval card")
            assert "replicas" in json.dumps(card.args["blocks"])  # the engine's dry-run diff, summarised

            def paged(word: str) -> list[dict[str, Any]]:
                return [m for m in sink.received if word in str(m.get("title"))
                        and (f"approval {approval} " in str(m.get("title")) or f"#{approval}" in str(m))]

            await eventually(lambda: _async(paged("ESCALATED") or None), timeout=20, what="escalated to the pager")
            await eventually(lambda: db.pool.fetchval("SELECT expires_at <= now() FROM approvals WHERE id = $1",
                                                      approval), timeout=20, what="the approval's expiry")
            assert await run_to_rest(engine, workflow_id) == "timed_out"
            svc.worker.wake()
            update = await eventually(lambda: _async(next(iter(peer.of("chat.update")), None)), timeout=20,
                                      what="the expired card updated")
            text = json.dumps(update.args["blocks"])
            assert "*Expired*" in text and "kubernaut_approve" not in text
            expired = await eventually(lambda: _async([m for m in sink.received
                                                       if "timed_out" in str(m.get("title"))
                                                       and "scale_deployment" in str(m.get("title"))] or None),
                                       timeout=20, what="the expiry paged")
            assert expired
    finally:
        peer.stop()
        await db.close()
