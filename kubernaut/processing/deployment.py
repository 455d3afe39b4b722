"""Alert Processor: committed alerts → incidents (fingerprint on the workload, dedup, classification)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import KubernautConfig
from kubernaut.models.signal import Signal
from kubernaut.processing.classification import classify
from kubernaut.processing.target import resolve_from_labels
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
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

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

    async def _process_one(self, alert_id: int) -> tuple[int | None, bool, bool] | None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT * FROM alerts WHERE id = $1 FOR UPDATE SKIP LOCKED", alert_id)
            if row is None:  # being processed by another replica right now (or no such alert)
                return None
            if row["processed_at"] is not None:
                return row["incident_id"], False, False
            signal = signal_from_row(row)
            resolution = resolve_from_labels(signal.labels, self.config.cluster_name)
            classification = classify(signal.namespace, None, signal.raw_severity)
            decision: dict[str, Any] = {
                "target": resolution.target.model_dump(), "target_source": resolution.source,
                "chain": resolution.chain, "classification": classification.model_dump(),
            }
            opened = notified = False
            if signal.status == "firing":
                incident_id, opened = await incidents.join_or_open(
                    conn, resolution, classification, signal.alertname, signal.starts_at
                )
                decision["outcome"] = "opened incident" if opened else "joined open incident"
                if opened:
                    await jobs.enqueue(conn, "analyze", incident_id)
                    await audit.append(conn, "processor", "incident.opened", incident_id, {
                        "alert_id": alert_id, "alertname": signal.alertname, "target": str(resolution.target),
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
        """Alerts committed by a gateway whose processing call failed or timed out are picked up here."""
        grace = self.config.gateway.process_wait_s + 2.0
        while True:
            try:
                ids = await unprocessed_ids(self.db.pool, grace, self.config.work.batch_size)
                if ids:
                    logger.info("sweeping %d unprocessed alerts", len(ids))
                    await self.process(ids)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("sweep failed; retrying")
            await asyncio.sleep(self.config.work.poll_interval_s)

    async def __del__(self) -> None:
        self._sweeper.cancel()
