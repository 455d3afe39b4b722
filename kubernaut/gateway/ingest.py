"""The webhook: authenticate, rate-limit, parse, commit durably, answer — the alert path's first hop."""

from __future__ import annotations

import functools
import logging
import time
import uuid

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse
from ray.serve.handle import DeploymentHandle

from kubernaut.config.settings import GatewayConfig
from kubernaut.gateway import metrics as gateway_metrics
from kubernaut.gateway.commit import GroupCommitter, Refused
from kubernaut.gateway.errors import problem, summary
from kubernaut.gateway.load import RequestRate
from kubernaut.gateway.processing_wait import ProcessingWait
from kubernaut.gateway.ratelimit import RateLimiter
from kubernaut.gateway.wake import DebouncedWake
from kubernaut.gateway.webhook import Refusal, parse_webhook
from kubernaut.identity.chain import AuthChain, Denied
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.principal import Permission, Principal
from kubernaut.observability import metrics
from kubernaut.observability.logs import serve_request_id
from kubernaut.storage.alerts import StoredAlert, insert_webhooks

logger = logging.getLogger("kubernaut.gateway")

COMMIT_SLOTS = 2  # concurrent group-commit statements per replica = connections of the ingest pool


def request_id_of(request: Request) -> str:
    """One id for the answer, the stored rows and every log line (Serve's own when the sender has none)."""
    return (request.headers.get("x-request-id") or serve_request_id() or uuid.uuid4().hex)[:64]


#: What a webhook needs: the ingest role (AlertManager's token), or admin.
CREATE_ALERTS = Permission(verb="create", resource="alerts")


def sender_of(request: Request, principal: Principal, config: GatewayConfig) -> str:
    """Who a rate limit applies to: the authenticated principal (its rotated tokens share one budget), else the
    client address."""
    if principal.method != "anonymous":
        return "principal:" + principal.actor
    if config.trust_forwarded_for and request.headers.get("x-forwarded-for"):
        return "addr:" + request.headers["x-forwarded-for"].split(",")[0].strip()
    return "addr:" + (request.client.host if request.client else "unknown")


_DENIED_OUTCOME = {401: "unauthorized", 403: "forbidden", 503: "unavailable"}


def _count_received(payload: WebhookPayload, stored: list[StoredAlert]) -> None:
    # One metric update per label value and request, not per alert.
    by_status: dict[str, int] = {}
    for alert in payload.alerts:
        status = alert.status or "firing"
        by_status[status] = by_status.get(status, 0) + 1
    for status, count in by_status.items():
        metrics.alert_received(status, count)
    redelivered = sum(1 for row in stored if not row.new)
    if redelivered:
        metrics.alert_deduplicated("redelivery", redelivered)


class WebhookIngest:
    """Answers ``POST /api/v1/alerts`` (also through :class:`kubernaut.gateway.fastpath.WebhookFastPath`)."""

    def __init__(self, config: GatewayConfig, auth: AuthChain, ingest_pool: asyncpg.Pool,
                 processor: DeploymentHandle) -> None:
        self._config = config
        self._auth = auth
        self._limiter = RateLimiter(config.rate_limit_per_s, config.rate_limit_burst)
        # Webhook commits have a pool of their own (API reads cannot starve them) and wait for a connection at
        # most ingest_acquire_timeout_s: with PostgreSQL down the sender gets its 503 at once, not after the
        # connect timeout, and the pool reconnects by itself when the server is back.
        self._committer = GroupCommitter(
            ingest_pool, slots=COMMIT_SLOTS,
            insert=functools.partial(insert_webhooks, acquire_timeout=config.ingest_acquire_timeout_s))
        self._rate = RequestRate()
        self._wait = ProcessingWait(config, processor, self._rate, DebouncedWake(processor))

    async def receive(self, request: Request) -> JSONResponse:
        started = time.perf_counter()
        request_id = request_id_of(request)
        outcome, response = await self._accept(request, request_id)
        gateway_metrics.webhook_answered(outcome, time.perf_counter() - started)
        if outcome != "accepted":
            logger.info("request_id=%s webhook outcome=%s status=%d", request_id, outcome, response.status_code)
        elif logger.isEnabledFor(logging.DEBUG):
            # Accepted webhooks are in Serve's access log with the same request id; a second INFO line per
            # webhook costs a few percent of the replica's CPU at thousands per second.
            logger.debug("request_id=%s webhook outcome=%s status=%d", request_id, outcome, response.status_code)
        return response

    async def _accept(self, request: Request, request_id: str) -> tuple[str, JSONResponse]:
        try:
            principal = await self._auth.require(request.headers.get("authorization"), CREATE_ALERTS)
        except Denied as exc:
            return _DENIED_OUTCOME.get(exc.status, "unauthorized"), problem(
                exc.status, exc.message, request_id, retry_after=exc.retry_after or 5.0, headers=exc.headers)
        wait = self._limiter.acquire(sender_of(request, principal, self._config))
        if wait > 0:
            return "rate_limited", problem(429, "rate limit exceeded for this sender", request_id, retry_after=wait)
        parsed = await parse_webhook(request, self._config, request_id, max_alerts=self._config.max_alerts_per_request,
                                     truncate=True)
        if isinstance(parsed, Refusal):
            return parsed.outcome, parsed.response
        payload = parsed.payload
        if parsed.dropped:
            metrics.alert_rejected("truncated")
            logger.warning("request_id=%s group of %d alerts truncated to the limit of %d (%d not stored)",
                           request_id, len(payload.alerts) + parsed.dropped, len(payload.alerts), parsed.dropped)
        try:
            stored = await self._committer.commit(payload, request_id)
        except Refused as exc:
            # This webhook alone (its batch neighbours were committed without it): retrying cannot help.
            logger.warning("request_id=%s storage refused the alerts: %s", request_id, exc)
            refusal = {"field": "body", "message": f"storage refused it: {exc}"}
            return "invalid", problem(422, f"invalid AlertManager webhook: {summary([refusal])}", request_id,
                                      problems=[refusal])
        except Exception as exc:
            logger.error("request_id=%s cannot persist alerts: %s", request_id, type(exc).__name__ + f": {exc}")
            return "unavailable", problem(503, "cannot persist alerts right now; retry", request_id)
        self._rate.tick()  # load = committed webhooks (refusals are cheap and say nothing about processing)
        _count_received(payload, stored)
        # Committed: from here on the answer is 2xx. Incident ids are a courtesy when the processor is quick.
        incident_by_alert: dict[int, int | None] = {s.id: s.incident_id for s in stored if s.incident_id}
        incident_by_alert.update(
            await self._wait.incidents_of([s.id for s in stored if s.incident_id is None], request_id))
        body = {
            "accepted": len(stored),
            "new": sum(1 for s in stored if s.new),
            "duplicates": sum(1 for s in stored if not s.new),
            "incident_ids": sorted({i for i in incident_by_alert.values() if i is not None}),
            "pending_processing": sum(1 for s in stored if s.id not in incident_by_alert),
            "request_id": request_id,
        }
        if payload.truncated_alerts:
            body["truncated_alerts"] = payload.truncated_alerts
        return "accepted", JSONResponse(body, headers={"X-Request-ID": request_id})
