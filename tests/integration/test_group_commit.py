"""The gateway's group commit against real PostgreSQL: concurrent webhooks share statements, each is
answered only with its own committed rows, redeliveries inside one statement are duplicates, and a failed
statement fails every webhook in it (each answers 503; nothing is half-acknowledged)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

import pytest

from kubernaut.gateway.commit import GroupCommitter
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.storage.alerts import insert_webhooks
from tests.integration.test_intelligence import connect

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


def payload(*fingerprints: str) -> WebhookPayload:
    return WebhookPayload.model_validate({
        "version": "4", "status": "firing", "receiver": "kubernaut", "groupKey": "{}:{}", "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{"status": "firing", "fingerprint": f,
                    "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": f"web-{f}"},
                    "annotations": {}, "startsAt": T0.isoformat(),
                    "endsAt": "0001-01-01T00:00:00Z"} for f in fingerprints],
    })


async def test_concurrent_webhooks_share_statements_and_get_their_own_rows(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    statements: list[int] = []

    async def counting(pool: Any, webhooks: list[tuple[WebhookPayload, str]]) -> Any:
        statements.append(len(webhooks))
        return await insert_webhooks(pool, webhooks)

    try:
        committer = GroupCommitter(db.pool, slots=1, insert=counting)
        results = await asyncio.gather(*(committer.commit(payload(f"a{i}", f"b{i}"), f"req-{i}") for i in range(40)))
        assert len(statements) < 40 and sum(statements) == 40  # batched, every webhook exactly once
        for i, stored in enumerate(results):
            assert [s.new for s in stored] == [True, True]
            rows = await db.pool.fetch("SELECT id, request_id, am_fingerprint FROM alerts WHERE id = ANY($1)",
                                       [s.id for s in stored])
            assert {r["request_id"] for r in rows} == {f"req-{i}"}
            assert sorted(r["am_fingerprint"] for r in rows) == [f"a{i}", f"b{i}"]
        assert await db.pool.fetchval("SELECT count(*) FROM alerts") == 80
    finally:
        await db.close()


async def test_a_redelivery_in_the_same_statement_is_a_duplicate_of_the_first(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    try:
        first, again, mixed = await insert_webhooks(db.pool, [(payload("x", "x"), "r1"), (payload("x"), "r2"),
                                                              (payload("y", "x"), "r3")])
        assert [s.new for s in first] == [True, True] and first[0].id == first[1].id
        assert [s.new for s in again] == [False] and again[0].id == first[0].id
        assert [s.new for s in mixed] == [True, False] and mixed[1].id == first[0].id
        assert await db.pool.fetchval("SELECT count(*) FROM alerts") == 2
        # A later redelivery finds the committed row.
        (later,) = await insert_webhooks(db.pool, [(payload("x"), "r4")])
        assert [(s.id, s.new) for s in later] == [(first[0].id, False)]
    finally:
        await db.close()


async def test_a_failed_statement_fails_every_webhook_in_it_and_the_next_ones_commit(fresh_dsn: str) -> None:
    db = await connect(fresh_dsn)
    failing = True

    async def flaky(pool: Any, webhooks: list[tuple[WebhookPayload, str]]) -> Any:
        if failing:
            raise ConnectionError("database went away")
        return await insert_webhooks(pool, webhooks)

    try:
        committer = GroupCommitter(db.pool, slots=1, insert=flaky)
        outcomes = await asyncio.gather(*(committer.commit(payload(f"f{i}"), f"r{i}") for i in range(10)),
                                        return_exceptions=True)
        assert all(isinstance(o, ConnectionError) for o in outcomes)
        assert await db.pool.fetchval("SELECT count(*) FROM alerts") == 0
        failing = False
        (stored,) = await asyncio.gather(committer.commit(payload("f0"), "retry"))
        assert stored[0].new and await db.pool.fetchval("SELECT count(*) FROM alerts") == 1
    finally:
        await db.close()
