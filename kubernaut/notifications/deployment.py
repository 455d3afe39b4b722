"""Notifications: deliver recorded notifications to every configured apprise URL, with retries."""

from __future__ import annotations

import logging

from ray import serve

from kubernaut.cluster.redaction import redactor
from kubernaut.config.settings import KubernautConfig
from kubernaut.models.jobs import JobKind, NotificationRef
from kubernaut.notifications.delivery import deliver, scheme_of, validate_url
from kubernaut.observability import metrics
from kubernaut.serving import ReplicaBase
from kubernaut.storage import notifications as store
from kubernaut.storage.jobs import Job, RetryLater

logger = logging.getLogger(__name__)


@serve.deployment(name="notifications")
class NotificationService(ReplicaBase):
    service_name = "notifications"

    async def __init__(self, config: KubernautConfig) -> None:
        await self._setup(config)
        self._urls = [u.get_secret_value() for u in config.notifications.urls]
        # Bodies quote diffs, reasons and findings: redacted again on the way out, whoever wrote them.
        self._redact = redactor(config.redaction)
        for url in self._urls:
            validate_url(url)
        self._start_worker({JobKind.NOTIFY: self._deliver}, on_give_up=self._gave_up)

    async def _deliver(self, job: Job) -> None:
        note = await store.get(self.db.pool, job.payload(NotificationRef).notification_id)
        if note is None or note.status in ("sent", "logged"):
            return
        deliveries = dict(note.deliveries)
        if not self._urls:
            logger.info("notification %s (no URLs configured): %s", note.id, note.title)
            await self._save(note.id, "logged", deliveries, job.attempts, None)
            return
        failed = []
        for index, url in enumerate(self._urls):
            key = str(index)
            if deliveries.get(key) == "sent":
                continue
            ok = await deliver(url, self._redact.text(note.title), self._redact.text(note.body), note.severity,
                               self.config.notifications.timeout_s)
            metrics.notification_sent(ok)
            deliveries[key] = "sent" if ok else "failed"
            if not ok:
                failed.append(scheme_of(url))
        if failed:
            error = f"delivery failed for {len(failed)} of {len(self._urls)} URLs ({', '.join(failed)})"
            await self._save(note.id, "retrying", deliveries, job.attempts, error)
            raise RetryLater(error, delay_s=min(300.0, 2.0 ** job.attempts))
        await self._save(note.id, "sent", deliveries, job.attempts, None)

    async def _save(self, notification_id: int, status: str, deliveries: dict[str, str], attempts: int,
                    error: str | None) -> None:
        await store.save_delivery(self.db.pool, notification_id, status=status, deliveries=deliveries,
                                  attempts=attempts, targets=len(self._urls), error=error)

    async def _gave_up(self, job: Job, error: str) -> None:
        await store.give_up(self.db.pool, job.payload(NotificationRef).notification_id, error)
