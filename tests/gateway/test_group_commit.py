"""The gateway's group commit against real PostgreSQL: concurrent webhooks share statements, each is
answered only with its own committed rows, redeliveries inside one statement are duplicates, a statement that
fails for an unreachable server fails every webhook in it (each answers 503; nothing is half-acknowledged),
and one the server refuses for its content is retried one webhook at a time so only the poison one is refused."""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from datetime import datetime, timezone
from typing import Any

import asyncpg
import pytest

from kubernaut.gateway.commit import GroupCommitter, Refused
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.storage.alerts import insert_webhooks
from kubernaut.storage.database import _init_connection
from tests.support.incident_history import connect

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


@pytest.mark.parametrize("poison", [
    {"receiver": "kube\x00naut"},  # NUL: PostgreSQL text refuses it
    {"group_key": "g\x00k"},
])
async def test_a_poison_webhook_in_a_batch_is_refused_alone_and_its_neighbours_commit(
    fresh_dsn: str, poison: dict[str, str]
) -> None:
    """Validation refuses these today; the committer must not depend on it (a newer field, a server setting):
    what PostgreSQL refuses fails only the webhook that carries it."""
    db = await connect(fresh_dsn)
    statements: list[int] = []

    async def counting(pool: Any, webhooks: list[tuple[WebhookPayload, str]]) -> Any:
        statements.append(len(webhooks))
        return await insert_webhooks(pool, webhooks)

    try:
        committer = GroupCommitter(db.pool, slots=1, insert=counting)
        bad = payload("poison").model_copy(update=poison)
        bodies = [payload(f"n{i}") for i in range(12)]
        bodies.insert(6, bad)
        outcomes = await asyncio.gather(*(committer.commit(b, f"r{i}") for i, b in enumerate(bodies)),
                                        return_exceptions=True)
        assert max(statements) > 1  # the poison really shared a statement with others
        assert isinstance(outcomes[6], Refused), outcomes[6]
        good = [o for i, o in enumerate(outcomes) if i != 6]
        assert all(isinstance(o, list) and o[0].new for o in good), good
        assert await db.pool.fetchval("SELECT count(*) FROM alerts") == 12
        assert await db.pool.fetchval("SELECT count(*) FROM alerts WHERE am_fingerprint = 'poison'") == 0
    finally:
        await db.close()


async def test_with_the_server_unreachable_a_webhook_fails_within_the_acquire_timeout() -> None:
    """A server that accepts TCP and never answers (a partition, a hung PostgreSQL): the webhook must fail in
    about the acquire timeout, so the gateway answers 503 while AlertManager still waits, not after the 60 s
    connect timeout. The failure is not the content's: every webhook of the batch fails, none is refused."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    port = silent.getsockname()[1]
    pool = await asyncpg.create_pool(f"postgresql://u@127.0.0.1:{port}/db", min_size=0, max_size=2,
                                     init=_init_connection)
    try:
        committer = GroupCommitter(pool, slots=2, insert=functools.partial(insert_webhooks, acquire_timeout=1.0))
        started = time.monotonic()
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(committer.commit(payload(f"d{i}"), f"r{i}") for i in range(5)), return_exceptions=True),
            timeout=10)
        assert time.monotonic() - started < 3.0
        assert all(isinstance(o, TimeoutError) for o in outcomes), outcomes  # unavailable (503), not Refused
    finally:
        pool.terminate()
        silent.close()
