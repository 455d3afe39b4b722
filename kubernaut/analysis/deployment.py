"""AI Analysis: root cause and a validated catalog action for each new incident."""

from __future__ import annotations

import logging
import time
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut.analysis.engine import analyze_signals
from kubernaut.analysis.rules import load_rules
from kubernaut.config.settings import KubernautConfig
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.analysis import AnalysisResult
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from kubernaut.processing.deployment import signal_from_row
from kubernaut.processing.target import resolve_from_labels
from kubernaut.serving import ReplicaBase, nudge
from kubernaut.storage import audit, incidents, jobs
from kubernaut.storage.jobs import Job

logger = logging.getLogger(__name__)


@serve.deployment(name="analysis")
class AnalysisService(ReplicaBase):
    service_name = "analysis"

    async def __init__(self, config: KubernautConfig, orchestrator: DeploymentHandle) -> None:
        await self._setup(config)
        self._rules = load_rules(config.analysis.rules_file)
        self._orchestrator = orchestrator
        self._start_worker({"analyze": self._analyze_incident}, on_give_up=self._gave_up)

    async def _analyze_incident(self, job: Job) -> None:
        incident_id = job.ref_id
        started = time.perf_counter()
        incident = await self.db.pool.fetchrow("SELECT * FROM incidents WHERE id = $1", incident_id)
        if incident is None:
            return
        rows = await self.db.pool.fetch("SELECT * FROM alerts WHERE incident_id = $1 ORDER BY id", incident_id)
        if not rows:
            return
        target = ResourceRef(kind=incident["target_kind"], name=incident["target_name"],
                             namespace=incident["target_namespace"])
        result = analyze_signals(self._rules, [signal_from_row(r) for r in rows], target)
        latency_ms = (time.perf_counter() - started) * 1000
        async with self.db.pool.acquire() as conn, conn.transaction():
            # A re-run after a crash finds the committed analysis and only re-sends the hand-off.
            analysis_id = await conn.fetchval(
                "SELECT id FROM analyses WHERE incident_id = $1 ORDER BY id LIMIT 1 FOR UPDATE", incident_id
            )
            if analysis_id is None:
                analysis_id = await conn.fetchval(
                    """INSERT INTO analyses (incident_id, engine, action, parameters, target, confidence, root_cause,
                                             alternatives, rule_id, reasoning, fallback_reason, latency_ms)
                       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING id""",
                    incident_id, result.engine, result.action, result.parameters, result.target.model_dump(),
                    result.confidence, result.root_cause,
                    [a.model_dump() for a in result.alternatives], result.rule_id, result.reasoning,
                    result.fallback_reason, latency_ms,
                )
                await incidents.set_phase(conn, incident_id, "analyzed")
                await audit.append(conn, "analysis", "analysis.completed", incident_id, {
                    "analysis_id": analysis_id, "engine": result.engine, "action": result.action,
                    "target": str(result.target), "confidence": result.confidence, "rule_id": result.rule_id,
                })
            await jobs.enqueue(conn, "orchestrate", analysis_id)
        nudge(self._orchestrator)

    async def _gave_up(self, job: Job, error: str) -> None:
        async with self.db.pool.acquire() as conn, conn.transaction():
            await incidents.set_phase(conn, job.ref_id, "analysis_failed")
            await audit.append(conn, "analysis", "analysis.failed", job.ref_id, {"error": error})

    async def analyze_payload(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        """Analysis only (``POST /api/v1/analyze``): what would be decided, nothing stored or done."""
        webhook = WebhookPayload.model_validate(payload)
        groups: dict[str, tuple[ResourceRef, list[Signal]]] = {}
        for index, alert in enumerate(webhook.alerts):
            resolution = resolve_from_labels(alert.labels, self.config.cluster_name)
            signal = Signal(
                alert_id=-(index + 1), alertname=alert.labels["alertname"], status=alert.status or "firing",
                raw_severity=alert.labels.get("severity"), namespace=alert.labels.get("namespace"),
                labels=alert.labels, annotations=alert.annotations or {}, starts_at=alert.starts_at,
                ends_at=alert.ends_at, am_fingerprint=alert.fingerprint or "",
            )
            groups.setdefault(resolution.fingerprint, (resolution.target, []))[1].append(signal)
        results: list[AnalysisResult] = [
            analyze_signals(self._rules, signals, target) for target, signals in groups.values()
        ]
        return [r.model_dump(mode="json") for r in results]
