"""Incident detail pages alerts, steps and audit events; audit verification runs in batches (issue 19, item 4)."""

from __future__ import annotations

import pytest

from kubernaut.storage import audit, views
from tests.support.incident_history import connect, seed_action, seed_incident

pytestmark = pytest.mark.integration


async def test_incident_detail_pages_alerts_steps_and_audit(fresh_dsn: str) -> None:
    database = await connect(fresh_dsn)
    try:
        pool = database.pool
        incident = await seed_incident(pool, signals=[f"Alert{i}" for i in range(7)])
        for _ in range(3):
            await seed_action(pool, incident, "restart_pod")
        async with pool.acquire() as conn, conn.transaction():
            await audit.append_many(conn, "test", [("event", incident, {"i": i}) for i in range(9)])
        everything = await views.incident_detail(pool, incident)
        assert everything is not None and len(everything["alerts"]) == 7 and len(everything["audit"]) == 9
        assert everything["page"] == {"limit": views.DETAIL_PAGE, "offset": 0, "alerts_total": 7,
                                      "steps_total": 3, "audit_total": 9}
        page = await views.incident_detail(pool, incident, limit=2, offset=3)
        assert page is not None
        assert [a["id"] for a in page["alerts"]] == [a["id"] for a in everything["alerts"][3:5]]
        assert [e["detail"]["i"] for e in page["audit"]] == [3, 4]
        assert sum(len(w["steps"]) for w in page["workflows"]) == 0  # steps 3.. do not exist
        first = await views.incident_detail(pool, incident, limit=2)
        assert first is not None and sum(len(w["steps"]) for w in first["workflows"]) == 2
        assert page["page"]["alerts_total"] == 7
    finally:
        await database.close()


async def test_audit_verification_in_batches_finds_the_tampered_event(fresh_dsn: str) -> None:
    database = await connect(fresh_dsn)
    try:
        async with database.pool.acquire() as conn, conn.transaction():
            await audit.append_many(conn, "test", [("event", None, {"i": i}) for i in range(10)])
        # Batches of 3 cross the chain's links between batches: still intact, every event counted.
        assert await audit.verify(database.pool, batch_size=3) == (True, None, 10)
        async with database.pool.acquire() as conn:
            await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update")
            await conn.execute("""UPDATE audit_events SET detail = '{"i": 99}' WHERE id = 7""")
        assert await audit.verify(database.pool, batch_size=3) == (False, 7, 6)
        assert await audit.verify_chain(database.pool, batch_size=4) == (False, 7)
    finally:
        await database.close()
