"""An incident of a fleet cluster whose API server does not answer waits, and past a bounded wait a human is told.

Analysed blind, the incident would be decided without the live state, so its analysis job is retried with the
kind's backoff (bounded by the job's attempts) and resumes normally once the cluster answers. After
``fleet.unreachable_escalate_after_s`` of the cluster not answering, the incident is escalated once, with a
notification naming the cluster and since when it has been unreachable. When the cluster is back the analysis
runs and the incident leaves ``escalated`` for ``analyzed`` as any other.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timezone

import asyncpg

from kubernaut.cluster.errors import ClusterError
from kubernaut.cluster.fleet import Fleet
from kubernaut.observability import metrics
from kubernaut.storage import audit, incidents, notifications
from kubernaut.storage import fleet as fleet_store
from kubernaut.storage.jobs import RetryLater


class ClusterWait:
    """One replica's view of which clusters do not answer, since when (wall clock, first failed check)."""

    def __init__(self, fleet: Fleet | None, escalate_after_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.fleet = fleet
        self.escalate_after_s = escalate_after_s
        self.clock = clock
        self.since: dict[str, float] = {}

    async def check(self, pool: asyncpg.Pool, incident_id: int, cluster: str | None) -> None:
        """Return when the incident's cluster answers; else raise ``RetryLater`` (escalating once past the wait)."""
        fleet = self.fleet
        member = fleet.members.get(cluster or fleet.home) if fleet is not None else None
        if member is None or member.api is None:
            return
        try:
            await asyncio.to_thread(member.api.call, "GET", "/version", timeout_s=5.0)
        except ClusterError as exc:
            now = self.clock()
            since = self.since.setdefault(member.name, now)
            error = str(exc)[:200]
            if now - since >= self.escalate_after_s:
                await self._escalate(pool, incident_id, member.name, since, error)
            raise RetryLater(f"cluster {member.name} unreachable: {error}") from None
        self.since.pop(member.name, None)

    async def _escalate(self, pool: asyncpg.Pool, incident_id: int, cluster: str, since: float, error: str) -> None:
        at = datetime.fromtimestamp(since, timezone.utc)
        async with pool.acquire() as conn, conn.transaction():
            await incidents.lock(conn, incident_id)
            if not await fleet_store.escalate_waiting(conn, incident_id):
                return  # already escalated (by this wait or by anything else): one notification
            metrics.incident_transition("escalated", cluster)
            await audit.append(conn, "analysis", "incident.escalated", incident_id, {
                "cluster": cluster, "reason": "cluster unreachable", "unreachable_since": at.isoformat(),
                "error": error})
            await notifications.create(
                conn, incident_id, "incident.escalated",
                title=f"[cluster {cluster} unreachable] incident #{incident_id} waits",
                body=(f"Incident #{incident_id} is on cluster {cluster!r}, whose API server has not answered since "
                      f"{at:%Y-%m-%d %H:%M:%S} UTC ({error}). Nothing is analysed or changed there until it answers; "
                      "the analysis resumes by itself when it does. A human should look at the cluster."),
                severity="warning")
