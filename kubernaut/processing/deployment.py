"""Alert Processor: committed alerts → incidents (fingerprint on the workload, dedup, classification)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.cluster.client import connect
from kubernaut.config.settings import KubernautConfig
from kubernaut.models.signal import Signal
from kubernaut.processing import filters
from kubernaut.processing.classification import classify, normalize_severity
from kubernaut.processing.owners import OwnerResolver
from kubernaut.serving import ReplicaBase, nudge
from kubernaut.storage import audit, incidents, jobs, notifications
from kubernaut.storage.alerts import unprocessed_ids

logger = logging.getLogger(__name__)


def signal_from_row(row: Any) -> Signal:
    return Signal(
        alert_id=row["id"], alertname=row["alertname"], status=row["status"],
        raw_severity=row["severity"], namespace=row["namespace"], labels=row["labels"],
        annotations=row["annotations"], starts_at=row["starts_at"], ends_at=row["ends_at"],
        am_fingerprint=row["am_fingerprint"],
    )


@serve.deployment(name="processor")
class AlertProcessor(ReplicaBase):
    service_name = "processor"

    async def __init__(self, config: KubernautConfig, analysis: DeploymentHandle,
                       notifications_handle: DeploymentHandle) -> None:
        await self._setup(config)
        self._analysis = analysis
        self._notifications = notifications_handle
        self._filters = filters.load_filters(config.processing)
        cluster = await asyncio.to_thread(connect, config.kubernetes) if config.processing.resolve_owners else None
        self._owners = OwnerResolver(
            cluster.api_client if cluster else None, config.cluster_name,
            ttl_s=config.processing.owner_cache_ttl_s, timeout_s=config.processing.kube_timeout_s,
        )
        self._wake = asyncio.Event()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    async def kick(self) -> None:
        """New alerts were committed without a processing call: process them now."""
        self._wake.set()

    async def process(self, alert_ids: list[int]) -> dict[int, int | None]:
        """Turn committed alerts into incident memberships; returns alert id → incident id (None: a
        resolved alert with no incident). Alerts another replica is processing right now are left out."""
        result: dict[int, int | None] = {}
        opened_any = notify_any = False
        for alert_id in alert_ids:
            outcome = await self._process_one(alert_id)
            if outcome is None:
                continue
            incident_id, opened, notified = outcome
            result[alert_id] = incident_id
            opened_any |= opened
            notify_any |= notified
        if opened_any:
            nudge(self._analysis)
        if notify_any:
            nudge(self._notifications)
        return result

    async def _enrich(self, alert_id: int) -> tuple[Any, Any, Any] | None:
        """Cluster lookups happen before the transaction: no row lock is held across API calls."""
        row = await self.db.pool.fetchrow(
            "SELECT labels, namespace, severity FROM alerts WHERE id = $1 AND processed_at IS NULL", alert_id)
        if row is None:
            return None
        resolution = await self._owners.resolve(row["labels"])
        namespace_labels = await self._owners.namespace_labels(row["namespace"])
        return resolution, classify(row["namespace"], namespace_labels, row["severity"]), namespace_labels

    async def _process_one(self, alert_id: int) -> tuple[int | None, bool, bool] | None:
        enriched = await self._enrich(alert_id)
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1 FOR UPDATE SKIP LOCKED", alert_id)
            if row is None:  # being processed by another replica right now (or no such alert)
                return None
            if row["processed_at"] is not None or enriched is None:
                return row["incident_id"], False, False
            signal = signal_from_row(row)
            resolution, classification, _ = enriched
            process, why = filters.decide(self._filters, signal, normalize_severity(signal.raw_severity)[0])
            decision: dict[str, Any] = {
                "filter": why, "target": resolution.target.model_dump(), "target_source": resolution.source,
                "chain": resolution.chain, "classification": classification.model_dump(),
            }
            if not process:
                decision["outcome"] = "filtered out"
                await conn.execute(
                    "UPDATE alerts SET processed_at = now(), process_decision = $2 WHERE id = $1", alert_id, decision
                )
                return None, False, False
            opened = notified = False
            if signal.status == "firing":
                known = await conn.fetchval(
                    "SELECT $2 = ANY(signals) FROM incidents WHERE fingerprint = $1 AND status = 'open'",
                    resolution.fingerprint, signal.alertname,
                )
                incident_id, opened = await incidents.join_or_open(
                    conn, resolution, classification, signal.alertname, signal.starts_at
                )
                decision["outcome"] = "opened incident" if opened else "joined open incident"
                if opened:
                    await jobs.enqueue(conn, "analyze", incident_id)
                    await audit.append(conn, "processor", "incident.opened", incident_id, {
                        "alert_id": alert_id, "alertname": signal.alertname, "target": str(resolution.target),
                        "target_source": resolution.source,
                    })
                elif known is False and self.config.processing.reanalyze_on_new_signal:
                    await jobs.requeue(conn, "analyze", incident_id)
                    decision["outcome"] += " (new signal: re-analysis)"
                    opened = True  # wakes the analysis like a new incident
                    await audit.append(conn, "processor", "incident.reanalysis", incident_id, {
                        "alert_id": alert_id, "alertname": signal.alertname,
                    })
            else:
                incident_id = await incidents.open_incident_for(conn, resolution.fingerprint)
                if incident_id is None:
                    incident_id = await incidents.latest_incident_for(conn, resolution.fingerprint)
                    decision["outcome"] = "resolved alert without an open incident"
                else:
                    decision["outcome"] = "resolved alert joined open incident"
            await conn.execute(
                "UPDATE alerts SET processed_at = now(), incident_id = $2, process_decision = $3 WHERE id = $1",
                alert_id, incident_id, decision,
            )
            logger.info("request_id=%s alert_id=%s %s %s → incident %s (%s via %s)", row["request_id"], alert_id,
                        signal.alertname, signal.status, incident_id, decision["outcome"], resolution.source)
            if incident_id is not None and signal.status == "resolved":
                still_firing = await incidents.refresh_firing(conn, incident_id)
                if still_firing == 0 and decision["outcome"] == "resolved alert joined open incident":
                    await audit.append(conn, "processor", "incident.resolved", incident_id, {"alert_id": alert_id})
                    await notifications.create(
                        conn, incident_id, "incident.resolved",
                        title=f"[resolved] {signal.alertname} on {resolution.target}",
                        body=f"All alerts of incident #{incident_id} on {resolution.target} are resolved.",
                        severity="success",
                    )
                    notified = True
            elif incident_id is not None:
                await incidents.refresh_firing(conn, incident_id)
            return incident_id, opened, notified

    async def _sweep_forever(self) -> None:
        """Alerts committed without a (successful) processing call are picked up here: after a kick at
        once, otherwise once they are older than the gateway's own wait, so the two do not race."""
        grace = self.config.gateway.process_wait_s + 2.0
        kicked = False
        while True:
            try:
                ids = await unprocessed_ids(self.db.pool, 0.0 if kicked else grace, self.config.work.batch_size)
                if ids:
                    await self.process(ids)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("sweep failed; retrying")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.work.poll_interval_s)
                kicked = True
            except asyncio.TimeoutError:
                kicked = False
            self._wake.clear()

    async def __del__(self) -> None:
        self._sweeper.cancel()
