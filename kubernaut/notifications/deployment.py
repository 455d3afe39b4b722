"""Notifications: deliver each recorded notification to the receivers its route chooses (apprise URLs, the Slack
app), with retries; escalate approvals nobody decides.

Each target's delivery is recorded separately (``deliveries``: ``<receiver>#<index>`` for a URL — the default
receiver's just ``<index>`` —, ``<receiver>#slack`` for a Slack channel, ``<receiver>`` for the grouping
decision of a route with a repeat interval) so that a retry
re-sends only where it failed. Slack gets Block Kit: an approval request with Approve/Reject buttons, then
every later event of the incident as a reply in its thread, and the request updated in place once decided
(``approval.decided``, whichever way it was decided). A receiver's failures in a row are kept
(``notification_receivers``), exported as a metric and shown on ``/ready`` for admins.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from ray import serve

from kubernaut.cluster.redaction import redactor
from kubernaut.config.notifications import DEFAULT_RECEIVER
from kubernaut.config.settings import KubernautConfig
from kubernaut.execution.catalog import CatalogError, get_action
from kubernaut.models.jobs import ApprovalRef, JobKind, NotificationRef
from kubernaut.notifications import escalation
from kubernaut.notifications.delivery import deliver, scheme_of
from kubernaut.notifications.receivers import Receiver, receivers_of
from kubernaut.notifications.routing import RoutingFacts, event_type, route
from kubernaut.notifications.slack_blocks import ApprovalCard, approval_blocks, event_blocks, summary_text
from kubernaut.observability import metrics
from kubernaut.serving import ReplicaBase
from kubernaut.slack.webapi import SlackApp, SlackError
from kubernaut.storage import approvals as approval_store
from kubernaut.storage import jobs
from kubernaut.storage import notifications as store
from kubernaut.storage import slack as slack_store
from kubernaut.storage.approvals import ApprovalRecord
from kubernaut.storage.jobs import Job, Reschedule, RetryLater
from kubernaut.storage.notifications import IncidentFacts, Notification

logger = logging.getLogger(__name__)

_CARD_EVENTS = ("approval_requested", "escalated")


def risk_of(action: str | None) -> str | None:
    if not action:
        return None
    try:
        return str(get_action(action).risk.value)
    except (CatalogError, KeyError, AttributeError):
        return None


@serve.deployment(name="notifications")
class NotificationService(ReplicaBase):
    service_name = "notifications"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._cfg = config.notifications
        self._receivers = receivers_of(self._cfg)
        # Bodies quote diffs, reasons and findings: redacted again on the way out, whoever wrote them.
        self._redact = redactor(config.redaction)
        self._slack = SlackApp(self._cfg.slack) if self._cfg.slack.enabled else None
        self._start_worker({JobKind.NOTIFY: self._deliver, JobKind.ESCALATE: self._escalate},
                           on_give_up=self._gave_up)

    # --- delivery ---------------------------------------------------------------------------------

    async def _deliver(self, job: Job) -> None:
        note = await store.get(self.db.pool, job.payload(NotificationRef).notification_id)
        if note is None or note.status in ("sent", "logged", "suppressed"):
            return
        facts = await store.incident_facts(self.db.pool, note.incident_id) if note.incident_id else None
        kind = event_type(note.event, facts.phase if facts else None)
        if kind == "approval_decided":
            await self._show_decision(note, facts, job)
            return
        routing = RoutingFacts(
            incident=note.incident_id, cluster=self.config.cluster_name, event=kind,
            namespace=facts.namespace if facts else None, environment=facts.environment if facts else None,
            severity=facts.severity if facts else None, priority=facts.priority if facts else None,
            risk=risk_of(facts.action) if facts else None)
        approval = await approval_store.get(self.db.pool, note.approval_id) if note.approval_id else None
        title, body = self._redact.text(note.title), self._redact.text(note.body)
        link = self._console_link(note.approval_id)
        if link:
            body += f"\nOpen in the console: {link}"
        deliveries = dict(note.deliveries)
        if kind == "expired" and note.incident_id is not None:
            await self._show_expiry(note.incident_id, facts, deliveries)
        failed: list[str] = []
        targets = 0
        routed = route(self._cfg.route, routing)
        for chosen in routed:
            receiver = self._receivers.get(chosen.receiver)
            if receiver is None or not receiver.targets:
                continue
            targets += receiver.targets
            if chosen.repeat_interval_s > 0 and receiver.name not in deliveries:
                claimed = await store.claim_group(self.db.pool, receiver.name, chosen.group_key,
                                                  chosen.repeat_interval_s)
                deliveries[receiver.name] = "routed" if claimed else "suppressed"
            if deliveries.get(receiver.name) == "suppressed":
                continue  # its group was notified within the route's repeat_interval_s
            errors = await self._to_receiver(receiver, note, facts, approval, kind, title, body, deliveries)
            if errors is None:
                continue  # everything already sent in an earlier round
            failures = await store.record_receiver(self.db.pool, receiver.name, not errors, "; ".join(errors))
            metrics.notification_receiver_failures(receiver.name, failures)
            if errors:
                failed.append(f"{receiver.name} ({', '.join(errors)})")
        if targets == 0:
            logger.info("notification %s (no receiver with a target): %s", note.id, note.title)
            await self._save(note.id, "logged", deliveries, job.attempts, 0, None)
            return
        if all(deliveries.get(c.receiver) == "suppressed" for c in routed if c.receiver in self._receivers
               and self._receivers[c.receiver].targets):
            await self._save(note.id, "suppressed", deliveries, job.attempts, targets, None)
            return
        if failed:
            error = f"delivery failed for {len(failed)} receiver(s): {'; '.join(failed)}"
            await self._save(note.id, "retrying", deliveries, job.attempts, targets, error)
            raise RetryLater(error)  # the notify kind's backoff (work.kinds.notify)
        await self._save(note.id, "sent", deliveries, job.attempts, targets, None)

    async def _to_receiver(self, receiver: Receiver, note: Notification, facts: IncidentFacts | None,
                           approval: ApprovalRecord | None, kind: str, title: str, body: str,
                           deliveries: dict[str, str]) -> list[str] | None:
        """Deliver to each of the receiver's targets not yet sent; the errors (None: nothing was tried)."""
        errors: list[str] = []
        tried = False
        for index, url in enumerate(receiver.urls):
            # The default receiver's URLs keep the keys they always had (their index).
            key = str(index) if receiver.name == DEFAULT_RECEIVER else f"{receiver.name}#{index}"
            if deliveries.get(key) == "sent":
                continue
            tried = True
            ok = await deliver(url, title, body, note.severity, self._cfg.timeout_s)
            metrics.notification_sent(ok)
            deliveries[key] = "sent" if ok else "failed"
            if not ok:
                errors.append(scheme_of(url))
        if receiver.slack_channel:
            key = f"{receiver.name}#slack"
            if deliveries.get(key) != "sent":
                tried = True
                try:
                    await self._post_slack(receiver.slack_channel, note, facts, approval, kind, title, body)
                    deliveries[key] = "sent"
                    metrics.notification_sent(True)
                except SlackError as exc:
                    deliveries[key] = "failed"
                    metrics.notification_sent(False)
                    errors.append(f"slack {exc}")
        return errors if tried else None

    async def _post_slack(self, channel: str, note: Notification, facts: IncidentFacts | None,
                          approval: ApprovalRecord | None, kind: str, title: str, body: str) -> None:
        """The approval card (or the event) in the incident's thread; the first message starts the thread."""
        if self._slack is None:
            raise SlackError("no Slack app configured")
        thread = await slack_store.thread_of(self.db.pool, note.incident_id, channel) if note.incident_id else None
        card = self._card(approval, facts) if approval is not None and kind in _CARD_EVENTS else None
        if card is not None and kind == "approval_requested":
            text, blocks = summary_text(card), approval_blocks(card)
        else:
            text, blocks = title, event_blocks(title, body)
        channel_id, ts = await self._slack.post(channel, text, blocks, thread_ts=thread)
        if note.incident_id and thread is None and ts:
            await slack_store.save_thread(self.db.pool, note.incident_id, channel, ts)
        if card is not None and kind == "approval_requested" and ts:
            await slack_store.save_approval_message(self.db.pool, card.approval_id, channel_id, ts)

    async def _show_decision(self, note: Notification, facts: IncidentFacts | None, job: Job) -> None:
        """Update every Slack message that asked for the approval in place, and say it in the thread."""
        deliveries = dict(note.deliveries)
        approval = await approval_store.get(self.db.pool, note.approval_id) if note.approval_id else None
        messages = await slack_store.approval_messages(self.db.pool, approval.id) if approval else []
        if self._slack is None or approval is None or not messages:
            await self._save(note.id, "logged", deliveries, job.attempts, 0, None)
            return
        card = self._card(approval, facts)
        errors = []
        for channel, ts in messages:
            for key, call in ((f"slack:{channel}:{ts}", "update"), (f"slack:{channel}:{ts}:reply", "reply")):
                if deliveries.get(key) == "sent":
                    continue
                try:
                    if call == "update":
                        await self._slack.update(channel, ts, summary_text(card), approval_blocks(card))
                    else:
                        await self._slack.post(channel, summary_text(card), event_blocks(summary_text(card), ""),
                                               thread_ts=ts)
                    deliveries[key] = "sent"
                except SlackError as exc:
                    deliveries[key] = "failed"
                    errors.append(str(exc))
        if errors:
            error = f"Slack update failed: {'; '.join(errors)}"
            await self._save(note.id, "retrying", deliveries, job.attempts, len(messages), error)
            raise RetryLater(error)
        await self._save(note.id, "sent", deliveries, job.attempts, len(messages), None)

    async def _show_expiry(self, incident_id: int, facts: IncidentFacts | None, deliveries: dict[str, str]) -> None:
        """The cards of the incident's expired approvals lose their buttons (best effort: the expiry itself is
        routed like any notification)."""
        if self._slack is None:
            return
        for approval_id, channel, ts in await slack_store.expired_approval_messages(self.db.pool, incident_id):
            key = f"slack:{channel}:{ts}"
            approval = await approval_store.get(self.db.pool, approval_id)
            if deliveries.get(key) == "sent" or approval is None:
                continue
            card = self._card(approval, facts)
            try:
                await self._slack.update(channel, ts, summary_text(card), approval_blocks(card))
                deliveries[key] = "sent"
            except SlackError as exc:
                deliveries[key] = "failed"
                logger.warning("Slack card of expired approval %s not updated: %s", approval_id, exc)

    def _console_link(self, approval_id: int | None) -> str | None:
        if approval_id is None or not self._cfg.console_url:
            return None
        return f"{self._cfg.console_url.rstrip('/')}/approvals/{approval_id}"

    def _card(self, approval: ApprovalRecord, facts: IncidentFacts | None) -> ApprovalCard:
        target = approval.target
        where = f" in ns/{target['namespace']}" if target.get("namespace") else ""
        return ApprovalCard(
            approval_id=approval.id, incident_id=approval.incident_id, action=approval.action,
            target=f"{target.get('kind', '?')}/{target.get('name', '?')}{where}",
            risk=risk_of(approval.action) or "unknown", reason=self._redact.text(approval.reason),
            root_cause=self._redact.text(facts.root_cause) if facts and facts.root_cause else None,
            diff=self._redact.text(approval.dry_run_diff) if approval.dry_run_diff else None,
            expires_at=approval.expires_at, console_url=self._console_link(approval.id), status=approval.status,
            decided_by=approval.decided_by, decided_at=approval.decided_at,
            decision_reason=self._redact.text(approval.decision_reason) if approval.decision_reason else None,
            rehearsal=approval.rehearsal)

    async def _save(self, notification_id: int, status: str, deliveries: dict[str, str], attempts: int,
                    targets: int, error: str | None) -> None:
        await store.save_delivery(self.db.pool, notification_id, status=status, deliveries=deliveries,
                                  attempts=attempts, targets=targets, error=error)

    # --- escalation -------------------------------------------------------------------------------

    async def _escalate(self, job: Job) -> None:
        """Notify again about an approval still pending (each stage once), then wait for the next stage."""
        approval_id = job.payload(ApprovalRef).approval_id
        while True:
            approval = await approval_store.get(self.db.pool, approval_id)
            if approval is None or approval.status != "pending":
                return  # decided, expired or cancelled: its own notifications said so
            sent = await store.events_of_approval(self.db.pool, approval_id)
            stage, wait_s = escalation.next_stage(self._cfg.escalation, approval.requested_at, approval.expires_at,
                                                  sent, datetime.now(timezone.utc))
            if stage is None:
                break
            left = (approval.expires_at - datetime.now(timezone.utc)).total_seconds()
            waited = (datetime.now(timezone.utc) - approval.requested_at).total_seconds()
            what = "ESCALATED" if stage.event == escalation.ESCALATED else "REMINDER"
            async with self.db.pool.acquire() as conn, conn.transaction():
                await jobs.fence(conn)
                await store.create(
                    conn, approval.incident_id, stage.event,
                    title=f"[kubernaut] {what}: approval {approval.id} ({approval.action}) undecided for "
                          f"{waited:.0f}s",
                    body=(f"Incident #{approval.incident_id}: nobody decided approval {approval.id} for "
                          f"{approval.action} on {approval.target.get('kind')}/{approval.target.get('name')} "
                          f"(ns/{approval.target.get('namespace') or '-'}); it expires in {max(left, 0):.0f}s.\n"
                          f"Why approval: {approval.reason}"),
                    severity="warning", approval_id=approval.id)
            if self.worker is not None:
                self.worker.wake()
        if wait_s is not None:
            raise Reschedule(max(wait_s, 0.2), "waiting for the next escalation stage")

    async def _gave_up(self, job: Job, error: str) -> None:
        if job.kind is JobKind.NOTIFY:
            await store.give_up(self.db.pool, job.payload(NotificationRef).notification_id, error)
        else:
            logger.error("escalation of approval %s gave up: %s", job.payload(ApprovalRef).approval_id, error)
