"""Notifications leave redacted: the notifications deployment (its class, run without Serve) delivers a
recorded notification whose body quotes secrets to a real HTTP sink through apprise."""

from __future__ import annotations

import json
from typing import Any

from kubernaut.config.settings import load_config
from kubernaut.notifications.deployment import NotificationService
from kubernaut.storage import notifications
from tests.support.polling import eventually

BODY = """Incident #1: crash loop
Dry-run diff:
--- a/Pod/shop/api
+++ /dev/null
-    - --db-password=hunter2
-    - --token=tok-123
-    env:
-    - name: DATABASE_URL
-      value: postgres://app:pg-pass@db:5432/shop
Last output: exec /app --token tok-123; curl -H 'Authorization: Bearer eyJhbGciOi.payload' api_key=AKIAXYZ12345678"""


async def test_delivered_notification_carries_no_secret(fresh_dsn: str, http_sink: Any) -> None:
    config = load_config({"storage": {"dsn": fresh_dsn}, "notifications": {"urls": [http_sink.apprise_url]},
                          "work": {"poll_interval_s": 0.2},
                          "redaction": {"text_patterns": [r"AKIA[0-9A-Z]{8,}"]}})
    cls: Any = NotificationService.func_or_class
    service = cls.__new__(cls)
    await cls.__init__(service, config)
    try:
        async with service.db.pool.acquire() as conn, conn.transaction():
            await notifications.create(conn, None, "approval.requested", title="[kubernaut] token=tok-123 approve?",
                                       body=BODY, severity="warning")
        service.worker.wake()

        async def delivered() -> dict[str, Any] | None:
            return next((m for m in http_sink.received if "approve?" in json.dumps(m)), None)

        message = json.dumps(await eventually(delivered, timeout=30, what="notification at the sink"))
    finally:
        await service.worker.stop()
        await service.db.close()
    for secret in ("hunter2", "tok-123", "pg-pass", "eyJhbGciOi", "AKIAXYZ12345678"):
        assert secret not in message, secret
    assert "--db-password=<redacted>" in message and "DATABASE_URL" in message
