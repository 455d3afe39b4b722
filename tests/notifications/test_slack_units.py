"""The Slack app's pieces without components: the Block Kit card, Slack's request signature and the user
mapping, the Web API client against the local Slack peer, and the escalation stages' timing."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from kubernaut.config.notifications import EscalationConfig, SlackConfig, SlackUser
from kubernaut.notifications import escalation
from kubernaut.notifications.slack_blocks import ApprovalCard, approval_blocks, diff_summary
from kubernaut.slack.interactions import InvalidInteraction, parse, principal_for, replay_digest, verified
from kubernaut.slack.webapi import SlackApp, SlackError
from tests.support.sinks import free_port
from tests.support.slack_peer import SlackPeer, button_press, signed_interaction

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


def card(**kw: object) -> ApprovalCard:
    return ApprovalCard(**{"approval_id": 42, "incident_id": 7, "action": "scale_deployment",
                           "target": "Deployment/shop in ns/payments", "risk": "medium",
                           "reason": "policy: production needs approval", "root_cause": "too few replicas",
                           "diff": "--- a\n+++ b\n-  replicas: 1\n+  replicas: 3\n", "expires_at": NOW,
                           "console_url": "https://kubernaut.example.com/console/approvals/42", **kw})


def test_the_approval_card_has_the_facts_the_buttons_and_the_console_link() -> None:
    blocks = approval_blocks(card())
    text = json.dumps(blocks)
    for fact in ("#7", "scale_deployment", "Deployment/shop in ns/payments", "medium", "policy: production",
                 "too few replicas", "-  replicas: 1", "+  replicas: 3"):
        assert fact in text, fact
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    buttons = {e["action_id"]: e for e in actions["elements"]}
    assert buttons["kubernaut_approve"]["value"] == buttons["kubernaut_reject"]["value"] == "42"
    assert buttons["kubernaut_approve"]["style"] == "primary" and buttons["kubernaut_reject"]["style"] == "danger"
    assert buttons["kubernaut_open"]["url"] == "https://kubernaut.example.com/console/approvals/42"


def test_a_decided_card_shows_who_when_and_the_outcome_and_no_buttons() -> None:
    decided = approval_blocks(card(status="approved", decided_by="kubernetes:alice@example.com",
                                   decided_at=NOW, decision_reason="via Slack by alice"))
    assert not [b for b in decided if b["type"] == "actions"]
    text = json.dumps(decided)
    assert "*Approved* by kubernetes:alice@example.com at 2026-12-05 12:00:00 UTC" in text


def test_untrusted_text_cannot_mention_the_channel_or_forge_links() -> None:
    text = json.dumps(approval_blocks(card(root_cause="<!channel> see <https://evil.example|the fix>",
                                           reason="a & b")))
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text and "a &amp; b" in text


def test_the_diff_summary_keeps_changed_lines_and_says_how_many_more() -> None:
    diff = "--- a\n+++ b\n" + "".join(f"-old {i}\n+new {i}\n" for i in range(20))
    summary = diff_summary(diff)
    assert summary is not None and summary.startswith("-old 0\n+new 0") and summary.endswith("… 28 more lines")
    assert diff_summary(None) is None


def test_slack_signatures_are_verified_within_five_minutes() -> None:
    body, headers = signed_interaction(SECRET, button_press(42, "U1"))
    ts, sig = headers["x-slack-request-timestamp"], headers["x-slack-signature"]
    assert verified(SECRET, body, ts, sig)
    assert not verified("another-secret", body, ts, sig)
    assert not verified(SECRET, body + b"x", ts, sig)  # the body is what is signed
    assert not verified("", body, ts, sig)  # no secret configured: nothing verifies (fail closed)
    assert not verified(SECRET, body, None, sig) and not verified(SECRET, body, ts, None)
    stale_body, stale = signed_interaction(SECRET, button_press(42, "U1"), timestamp=int(time.time()) - 301)
    assert not verified(SECRET, stale_body, stale["x-slack-request-timestamp"], stale["x-slack-signature"])
    fresh_body, fresh = signed_interaction(SECRET, button_press(42, "U1"), timestamp=int(time.time()) - 200)
    assert verified(SECRET, fresh_body, fresh["x-slack-request-timestamp"], fresh["x-slack-signature"])
    other = sig[:-1] + ("1" if sig.endswith("0") else "0")
    assert replay_digest(ts, sig) == replay_digest(ts, sig) != replay_digest(ts, other)


def test_a_button_press_is_parsed_and_anything_else_refused_naming_the_field() -> None:
    press = parse(signed_interaction(SECRET, button_press(42, "U1", approve=False, channel="C9"))[0])
    assert (press.approval_id, press.approve, press.user_id, press.channel_id) == (42, False, "U1", "C9")
    for payload, field in (({"type": "view_submission"}, "payload.type"),
                           ({**button_press(1, "U1"), "actions": []}, "payload.actions"),
                           ({**button_press(1, "U1"), "actions": [{"action_id": "x", "value": "1"}]},
                            "payload.actions[0].action_id"),
                           ({**button_press(1, "U1"), "actions": [{"action_id": "kubernaut_approve",
                                                                   "value": "1; drop"}]}, "payload.actions[0].value"),
                           ({**button_press(1, "U1"), "user": {}}, "payload.user.id")):
        with pytest.raises(InvalidInteraction) as refused:
            parse(signed_interaction(SECRET, payload)[0])
        assert refused.value.field == field
    with pytest.raises(InvalidInteraction):
        parse(b"not a form")


def test_slack_users_map_by_id_or_email_and_nobody_else() -> None:
    users = {"U1": SlackUser(user="alice@example.com", groups=["sre"]), "Bob@Example.com": SlackUser(user="bob")}
    alice = principal_for(users, "U1", None)
    assert alice is not None and (alice.name, alice.method, alice.groups) == ("alice@example.com", "kubernetes",
                                                                             ("sre",))
    bob = principal_for(users, "U2", "bob@example.com")
    assert bob is not None and bob.name == "bob"
    assert principal_for(users, "U3", "carol@example.com") is None
    assert principal_for(users, "U3", None) is None


async def test_the_web_api_client_against_the_slack_peer() -> None:
    peer = SlackPeer(bot_token="xoxb-test", emails={"U2": "bob@example.com"}).start()
    try:
        app = SlackApp(SlackConfig(bot_token="xoxb-test", api_url=peer.api_url))
        channel, ts = await app.post("#ops", "hello", [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}])
        await app.post("#ops", "reply", [], thread_ts=ts)
        await app.update(channel, ts, "updated", [])
        await app.ephemeral(channel, "U1", "not allowed")
        assert await app.email_of("U2") == "bob@example.com" and await app.email_of("U9") is None
        (first, reply) = peer.of("chat.postMessage")
        assert first.token == "xoxb-test" and first.args["channel"] == "#ops" and "thread_ts" not in first.args
        assert reply.args["thread_ts"] == ts
        assert peer.of("chat.update")[0].args == {"channel": channel, "ts": ts, "text": "updated", "blocks": []}
        assert peer.of("chat.postEphemeral")[0].args["user"] == "U1"
        wrong = SlackApp(SlackConfig(bot_token="xoxb-wrong", api_url=peer.api_url))
        with pytest.raises(SlackError, match="invalid_auth") as refused:
            await wrong.post("#ops", "x", [])
        assert "xoxb" not in str(refused.value)
    finally:
        peer.stop()
    down = SlackApp(SlackConfig(bot_token="xoxb-test", api_url=f"http://127.0.0.1:{free_port()}/api/",
                                timeout_s=2))
    with pytest.raises(SlackError, match=r"chat\.postMessage") as failed:
        await down.post("#ops", "x", [])
    assert "xoxb" not in str(failed.value)


@pytest.mark.parametrize(("config", "sent", "after_s", "expected", "wait_s"), [
    (EscalationConfig(), set(), 0, None, None),  # no escalation configured
    (EscalationConfig(escalate_after_s=60), set(), 10, None, 50),
    (EscalationConfig(escalate_after_s=60), set(), 61, escalation.ESCALATED, 0),
    (EscalationConfig(escalate_after_s=60), {escalation.ESCALATED}, 61, None, None),
    (EscalationConfig(escalate_after_s=60, remind_before_expiry_s=120), {escalation.ESCALATED}, 61, None, 719),
    (EscalationConfig(escalate_after_s=60, remind_before_expiry_s=120), {escalation.ESCALATED}, 780,
     escalation.REMINDER, 0),
    (EscalationConfig(escalate_after_s=60), set(), 900, None, None),  # expired: expiry notifies by itself
    (EscalationConfig(escalate_after_s=1000), set(), 10, None, None),  # after expiry: never
])
def test_escalation_stages(config: EscalationConfig, sent: set[str], after_s: float, expected: str | None,
                           wait_s: float | None) -> None:
    requested, expires = NOW, NOW + timedelta(seconds=900)
    stage, wait = escalation.next_stage(config, requested, expires, sent, NOW + timedelta(seconds=after_s))
    assert (stage.event if stage else None, wait) == (expected, wait_s)
