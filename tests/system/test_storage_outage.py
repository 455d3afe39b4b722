"""PostgreSQL stopped under the running app: a webhook gets 503 with Retry-After within about two seconds (the
ingest pool's acquire timeout, not the connect timeout), /ready says storage is unreachable, and once the
server is back webhooks are accepted and processed again with nothing restarted."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.polling import eventually

pytestmark = pytest.mark.integration

PAYLOADS = Path(__file__).resolve().parents[1] / "data" / "alertmanager"


def webhook() -> dict:
    body = json.loads((PAYLOADS / "captured_am0.25_firing_amtool.json").read_text())
    tag = uuid.uuid4().hex[:5]
    for alert in body["alerts"]:
        alert["labels"].update(namespace="outage", pod=f"checkout-7d4b9c8f6-{tag}")
        alert["fingerprint"] = uuid.uuid4().hex[:16]
    return body


async def test_postgres_down_answers_503_fast_and_recovers_without_restart(
    serve_app, api: httpx.AsyncClient, pg_data_dir: Path, pg_dsn: str
) -> None:
    from kubernaut.storage.embedded import ensure_embedded_server, stop_embedded_server

    assert (await api.post("/api/v1/alerts", json=webhook())).status_code == 200  # the pools hold connections
    assert await asyncio.to_thread(stop_embedded_server, pg_data_dir)
    try:
        for _ in range(3):  # not only the first: a pool whose connections all died must still answer fast
            started = time.monotonic()
            answer = await api.post("/api/v1/alerts", json=webhook())
            elapsed = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["Retry-After"]) >= 1
            assert elapsed < 3.0, f"503 after {elapsed:.1f}s"
        ready = await api.get("/ready")
        assert ready.status_code == 503 and ready.json()["storage"] == "unreachable"
    finally:
        assert await asyncio.to_thread(ensure_embedded_server, pg_data_dir) == pg_dsn  # same address again

    async def accepted() -> bool:
        return (await api.post("/api/v1/alerts", json=webhook())).status_code == 200

    await eventually(accepted, timeout=30, interval=1, what="webhooks accepted after PostgreSQL returned")

    # The processor recovered too: a new webhook is assigned its incident (the gateway waits for that).
    async def processed() -> list[int]:
        answer = await api.post("/api/v1/alerts", json=webhook())
        return answer.json()["incident_ids"] if answer.status_code == 200 else []

    await eventually(processed, timeout=30, interval=1, what="alerts processed after PostgreSQL returned")
    ready = await api.get("/ready")
    assert ready.status_code == 200 and ready.json()["storage"] == "ok"
