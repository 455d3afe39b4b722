"""Gateway: the only HTTP ingress. AlertManager webhook, durable accept, REST API, health, metrics."""


import asyncio
import functools
import hashlib
import json
import logging
import math
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as FastApiPath
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from kubernaut import __version__
from kubernaut.config.settings import KubernautConfig
from kubernaut.gateway.auth import TokenVerifier
from kubernaut.gateway.commit import GroupCommitter, Refused
from kubernaut.gateway.errors import describe_validation_error, summary
from kubernaut.gateway.fastpath import WebhookFastPath
from kubernaut.gateway.load import RequestRate
from kubernaut.gateway.ratelimit import RateLimiter
from kubernaut.models.alertmanager import WebhookPayload
from kubernaut.models.resource import ResourceRef
from kubernaut.observability import metrics
from kubernaut.observability.logs import configure_logging, serve_request_id
from kubernaut.serving import nudge
from kubernaut.storage import audit as audit_store
from kubernaut.storage import jobs as job_store
from kubernaut.storage import views
from kubernaut.storage.alerts import insert_webhooks
from kubernaut.storage.database import Database

logger = logging.getLogger("kubernaut.gateway")
_NUDGE_INTERVAL_S = 0.1
# An AlertManager body is 5 levels deep (body → alerts → alert → labels → value); anything much deeper is not
# one, and deep structures cost recursion wherever they are copied or serialised later.
_MAX_NESTING = 16
_COMMIT_SLOTS = 2  # concurrent group-commit statements per replica = connections of the ingest pool
# Ids are BIGSERIAL and offsets BIGINT in PostgreSQL: a larger integer must be a 422 naming the parameter, not
# an overflow in the driver (a 500). Found by tests/integration/test_fuzz.py.
_MAX_ID = 2**63 - 1
_MAX_OFFSET = 1_000_000_000


def _nesting_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


class JobReplay(BaseModel):
    """Who replays a dead job and why (recorded in the audit trail)."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(default="api", min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    reason: str | None = Field(default=None, max_length=2000, pattern=r"^[^\x00]*$")


class ApprovalDecision(BaseModel):
    """Who decides and why; an override is validated against the action's parameter schema."""

    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    reason: str | None = Field(default=None, max_length=2000)
    override: dict[str, Any] | None = None

API_DESCRIPTION = """Kubernaut turns AlertManager alerts about Kubernetes workloads into safe, verified
remediations. Point an AlertManager `webhook_configs` receiver at `POST /api/v1/alerts`."""

app = FastAPI(title="Kubernaut", version=__version__, description=API_DESCRIPTION)
app.add_middleware(WebhookFastPath)


def _printable(text: str) -> str:
    """A lone surrogate (the valid JSON escape "\\ud800") cannot be encoded as UTF-8: escape it."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's default 422 echoes the offending input, and one with a lone surrogate in it could not be
    encoded: the answer was a 500 (found by tests/integration/test_fuzz.py). This one names the fields and
    the messages, as the webhook's answers do, and never the input."""
    problems = [{"field": _printable(".".join(str(part) for part in error["loc"])) or "body",
                 "message": _printable(str(error["msg"]))} for error in exc.errors()[:10]]
    return JSONResponse({"error": f"invalid request: {summary(problems)}", "problems": problems}, status_code=422)

_WEBHOOK_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": WebhookPayload.model_json_schema(by_alias=True)}},
    }
}


def _problem(status: int, message: str, request_id: str, retry_after: float = 5.0, **extra: Any) -> JSONResponse:
    headers = {"X-Request-ID": request_id}
    if status in (429, 503):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return JSONResponse({"error": message, "request_id": request_id, **extra}, status_code=status, headers=headers)


@serve.deployment(name="gateway")
@serve.ingress(app)
class Gateway:
    async def __init__(
        self,
        config: KubernautConfig,
        processor: DeploymentHandle,
        analysis: DeploymentHandle,
        executor: DeploymentHandle,
        context: DeploymentHandle,
        intelligence: DeploymentHandle,
        effectiveness: DeploymentHandle,
        orchestrator: DeploymentHandle,
    ) -> None:
        configure_logging(config.log_level)
        self.config = config
        self.db = await Database.connect(config.storage, application_name="kubernaut-gateway")
        self._processor = processor
        self._analysis = analysis
        self._executor = executor
        self._context = context
        self._intelligence = intelligence
        self._effectiveness = effectiveness
        self._orchestrator = orchestrator
        self._auth = TokenVerifier([t.get_secret_value() for t in config.gateway.auth_tokens])
        self._limiter = RateLimiter(config.gateway.rate_limit_per_s, config.gateway.rate_limit_burst)
        # /analyze has a bucket of its own per sender: heavy analysis use must not eat its webhook budget.
        self._analyze_limiter = RateLimiter(config.gateway.rate_limit_per_s, config.gateway.rate_limit_burst)
        # Webhook commits have a pool of their own (API reads cannot starve them) and wait for a connection at
        # most ingest_acquire_timeout_s: with PostgreSQL down the sender gets its 503 at once, not after the
        # connect timeout, and the pool reconnects by itself when the server is back.
        self._ingest_pool = await self.db.extra_pool(_COMMIT_SLOTS, "kubernaut-gateway-ingest")
        self._committer = GroupCommitter(
            self._ingest_pool, slots=_COMMIT_SLOTS,
            insert=functools.partial(insert_webhooks, acquire_timeout=config.gateway.ingest_acquire_timeout_s))
        self._inflight = 0
        self._rate = RequestRate()
        self._last_nudge = 0.0
        self._nudge_scheduled = False
        self._registry = CollectorRegistry()
        self._requests = Counter("kubernaut_gateway_requests", "Webhook requests by outcome",
                                 ["outcome"], registry=self._registry)
        self._latency = Histogram("kubernaut_gateway_accept_seconds", "Time to durable accept",
                                  registry=self._registry)
        WebhookFastPath.handler = self._receive

    # --- webhook ---------------------------------------------------------------------------------

    @app.post("/api/v1/alerts", openapi_extra=_WEBHOOK_BODY_DOC, summary="AlertManager webhook (v4)")
    async def receive_alerts(self, request: Request) -> JSONResponse:
        return await self._receive(request)

    @app.post("/alerts", openapi_extra=_WEBHOOK_BODY_DOC, include_in_schema=False)
    async def receive_alerts_alias(self, request: Request) -> JSONResponse:
        return await self._receive(request)

    async def _receive(self, request: Request) -> JSONResponse:
        started = time.perf_counter()
        # One id for the answer, the stored rows and every log line (Serve's own when the sender has none).
        request_id = request.headers.get("x-request-id") or serve_request_id() or uuid.uuid4().hex
        request_id = request_id[:64]
        outcome, response = await self._accept(request, request_id)
        self._requests.labels(outcome).inc()
        self._latency.observe(time.perf_counter() - started)
        metrics.webhook_handled(outcome, time.perf_counter() - started)
        if outcome != "accepted":
            metrics.alert_rejected(outcome)
            logger.info("request_id=%s webhook outcome=%s status=%d", request_id, outcome, response.status_code)
        elif logger.isEnabledFor(logging.DEBUG):
            # Accepted webhooks are in Serve's access log with the same request id; a second INFO line per
            # webhook costs a few percent of the replica's CPU at thousands per second.
            logger.debug("request_id=%s webhook outcome=%s status=%d", request_id, outcome, response.status_code)
        return response

    def _wake_processor(self) -> None:
        """Under load one wake-up per 100 ms is plenty (the processor drains everything unprocessed), but the
        last webhooks of a burst must not wait for the sweeper's slow poll: a skipped wake-up is sent late."""
        since = time.monotonic() - self._last_nudge
        if since >= _NUDGE_INTERVAL_S:
            self._last_nudge = time.monotonic()
            nudge(self._processor)
        elif not self._nudge_scheduled:
            self._nudge_scheduled = True
            asyncio.get_running_loop().call_later(_NUDGE_INTERVAL_S - since, self._trailing_nudge)

    def _trailing_nudge(self) -> None:
        self._nudge_scheduled = False
        self._last_nudge = time.monotonic()
        nudge(self._processor)

    def _sender(self, request: Request) -> str:
        authorization = request.headers.get("authorization")
        if authorization and self._auth.enabled:
            # Keyed by a digest of the credential: the token itself is never kept in memory twice.
            return "token:" + hashlib.sha256(authorization.encode()).hexdigest()[:16]
        if self.config.gateway.trust_forwarded_for and request.headers.get("x-forwarded-for"):
            return "addr:" + request.headers["x-forwarded-for"].split(",")[0].strip()
        return "addr:" + (request.client.host if request.client else "unknown")

    async def _read_body(self, request: Request) -> bytes | None:
        """The body, or None once it passes ``max_body_bytes``: bytes are counted as they arrive, so a chunked
        body without Content-Length (or one that lies about it) is never read whole before the check."""
        limit = self.config.gateway.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def _parse_webhook(self, request: Request, request_id: str, *, max_alerts: int, truncate: bool
                             ) -> tuple[str, JSONResponse] | tuple[WebhookPayload, int]:
        """The limits every AlertManager-shaped body gets (webhook and /analyze): size, nesting, alert count,
        schema, labels per alert. Returns (outcome, refusal) or (payload, alerts dropped by truncation)."""
        gateway_cfg = self.config.gateway
        body = await self._read_body(request)
        if body is None:
            return "too_large", _problem(413, f"body larger than {gateway_cfg.max_body_bytes} bytes", request_id)
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and integers of > 4300 digits
            return "bad_json", _problem(400, f"malformed JSON: {exc}", request_id)
        except RecursionError:
            return "bad_json", _problem(400, "malformed JSON: nested too deeply", request_id)
        if not isinstance(raw, dict):
            return "invalid", _problem(422, "invalid AlertManager webhook: body: must be a JSON object", request_id,
                                       problems=[{"field": "body", "message": "must be a JSON object"}])
        if _nesting_exceeds(raw, _MAX_NESTING):
            problem = {"field": "body", "message": f"nested deeper than {_MAX_NESTING} levels"}
            return "invalid", _problem(422, f"invalid AlertManager webhook: {summary([problem])}", request_id,
                                       problems=[problem])
        alerts = raw.get("alerts")
        dropped = 0
        if isinstance(alerts, list) and len(alerts) > max_alerts:
            if not truncate:
                return "too_large", _problem(
                    413, f"alerts: {len(alerts)} alerts exceed the limit of {max_alerts}", request_id)
            # A group above the limit is stored up to the limit and the rest counted, as AlertManager's own
            # max_alerts does (it does not retry a 4xx: refusing would lose the whole group).
            dropped = len(alerts) - max_alerts
            raw = {**raw, "alerts": alerts[:max_alerts]}
        try:
            payload = WebhookPayload.model_validate(raw, context={"received_at": datetime.now(timezone.utc)})
        except (ValidationError, RecursionError) as exc:
            problems = (describe_validation_error(exc) if isinstance(exc, ValidationError)
                        else [{"field": "body", "message": "nested too deeply"}])
            return "invalid", _problem(422, f"invalid AlertManager webhook: {summary(problems)}", request_id,
                                       problems=problems)
        max_labels = gateway_cfg.max_labels_per_alert
        for index, alert in enumerate(payload.alerts):
            for field, mapping in (("labels", alert.labels), ("annotations", alert.annotations or {})):
                if len(mapping) > max_labels:
                    problem = {"field": f"alerts.{index}.{field}",
                               "message": f"{len(mapping)} entries exceed the limit of {max_labels}"}
                    return "invalid", _problem(422, f"invalid AlertManager webhook: {summary([problem])}",
                                               request_id, problems=[problem])
        return payload, dropped

    async def _accept(self, request: Request, request_id: str) -> tuple[str, JSONResponse]:
        if not self._auth.verify(request.headers.get("authorization")):
            return "unauthorized", _problem(401, "unauthorized", request_id)
        wait = self._limiter.acquire(self._sender(request))
        if wait > 0:
            return "rate_limited", _problem(429, "rate limit exceeded for this sender", request_id, retry_after=wait)
        parsed = await self._parse_webhook(request, request_id, max_alerts=self.config.gateway.max_alerts_per_request,
                                           truncate=True)
        if isinstance(parsed[0], str):
            return parsed  # type: ignore[return-value]
        payload, dropped = parsed
        if dropped:
            payload.truncated_alerts += dropped
            metrics.alert_rejected("truncated")
            logger.warning("request_id=%s group of %d alerts truncated to the limit of %d (%d not stored)",
                           request_id, len(payload.alerts) + dropped, len(payload.alerts), dropped)
        try:
            stored = await self._committer.commit(payload, request_id)
        except Refused as exc:
            # This webhook alone (its batch neighbours were committed without it): retrying cannot help.
            logger.warning("request_id=%s storage refused the alerts: %s", request_id, exc)
            problem = {"field": "body", "message": f"storage refused it: {exc}"}
            return "invalid", _problem(422, f"invalid AlertManager webhook: {summary([problem])}", request_id,
                                       problems=[problem])
        except Exception as exc:
            logger.error("request_id=%s cannot persist alerts: %s", request_id, type(exc).__name__ + f": {exc}")
            return "unavailable", _problem(503, "cannot persist alerts right now; retry", request_id)
        self._rate.tick()  # load = committed webhooks (refusals are cheap and say nothing about processing)
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
        # Committed: from here on the answer is 2xx. Incident ids are a courtesy when the processor is quick.
        incident_by_alert: dict[int, int | None] = {s.id: s.incident_id for s in stored if s.incident_id}
        pending = [s.id for s in stored if s.incident_id is None]
        gateway_cfg = self.config.gateway
        if pending and gateway_cfg.process_wait_s > 0 and self._inflight < gateway_cfg.process_wait_max_inflight \
                and self._rate.per_second() <= gateway_cfg.process_wait_max_rate:
            self._inflight += 1
            try:
                assigned = await asyncio.wait_for(
                    self._processor.process.remote(pending), timeout=gateway_cfg.process_wait_s
                )
                incident_by_alert.update(assigned)
            except Exception as exc:  # the processor's sweeper finishes the job
                logger.warning("request_id=%s processing deferred: %s", request_id, type(exc).__name__)
            finally:
                self._inflight -= 1
        elif pending:
            self._wake_processor()
        incident_ids = sorted({i for i in incident_by_alert.values() if i is not None})
        body = {
            "accepted": len(stored),
            "new": sum(1 for s in stored if s.new),
            "duplicates": sum(1 for s in stored if not s.new),
            "incident_ids": incident_ids,
            "pending_processing": sum(1 for s in stored if s.id not in incident_by_alert),
            "request_id": request_id,
        }
        if payload.truncated_alerts:
            body["truncated_alerts"] = payload.truncated_alerts
        return "accepted", JSONResponse(body, headers={"X-Request-ID": request_id})

    # --- incidents, catalog, analysis, context -----------------------------------------------------

    def _require_auth(self, request: Request) -> None:
        if not self._auth.verify(request.headers.get("authorization")):
            raise HTTPException(status_code=401, detail="unauthorized")

    @app.get("/api/v1/incidents", summary="Incidents, newest first")
    async def list_incidents(
        self,
        request: Request,
        status: str | None = Query(default=None, pattern="^(open|resolved|closed)$"),
        namespace: str | None = Query(default=None, max_length=63),
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0, le=_MAX_OFFSET),
    ) -> JSONResponse:
        self._require_auth(request)
        items = await views.list_incidents(self.db.pool, status=status, namespace=namespace, limit=limit,
                                           offset=offset)
        return JSONResponse(jsonable_encoder({"items": items, "limit": limit, "offset": offset}))

    @app.get("/api/v1/incidents/{incident_id}", summary="One incident with alerts, analysis, workflow, actions")
    async def get_incident(
        self,
        request: Request,
        incident_id: int = FastApiPath(ge=1, le=_MAX_ID),
        limit: int = Query(default=views.DETAIL_PAGE, ge=1, le=views.DETAIL_PAGE_MAX),
        offset: int = Query(default=0, ge=0, le=_MAX_OFFSET),
    ) -> JSONResponse:
        self._require_auth(request)
        view = await views.incident_detail(self.db.pool, incident_id, limit=limit, offset=offset)
        if view is None:
            raise HTTPException(status_code=404, detail=f"incident {incident_id} not found")
        return JSONResponse(jsonable_encoder(view))

    @app.get("/api/v1/alerts", summary="Received alerts, newest first: rejected ones with the reason, or pending")
    async def list_alerts(
        self,
        request: Request,
        outcome: str | None = Query(default=None, pattern="^(rejected|pending)$"),
        namespace: str | None = Query(default=None, max_length=63),
        limit: int = Query(default=50, ge=1, le=500),
        offset: int = Query(default=0, ge=0, le=_MAX_OFFSET),
    ) -> JSONResponse:
        self._require_auth(request)
        items = await views.list_alerts(self.db.pool, outcome=outcome, namespace=namespace, limit=limit,
                                        offset=offset)
        return JSONResponse(jsonable_encoder({"items": items, "limit": limit, "offset": offset}))

    @app.get("/api/v1/actions", summary="The action catalog with JSON schemas of parameters")
    async def actions(self, request: Request) -> JSONResponse:
        self._require_auth(request)
        return JSONResponse(jsonable_encoder({"actions": await self._executor.catalog.remote()}))

    @app.post("/api/v1/analyze", openapi_extra=_WEBHOOK_BODY_DOC, summary="Analyze alerts without acting")
    async def analyze(self, request: Request) -> JSONResponse:
        """The webhook's limits (size, nesting, alerts, labels), and at most ``analyze_max_alerts`` alerts: an
        analysis is work per target (an LLM call each), so a body above the limit is refused, not truncated."""
        self._require_auth(request)
        request_id = (request.headers.get("x-request-id") or serve_request_id() or uuid.uuid4().hex)[:64]
        wait = self._analyze_limiter.acquire(self._sender(request))
        if wait > 0:
            return _problem(429, "rate limit exceeded for this sender", request_id, retry_after=wait)
        gateway_cfg = self.config.gateway
        parsed = await self._parse_webhook(
            request, request_id, max_alerts=min(gateway_cfg.analyze_max_alerts, gateway_cfg.max_alerts_per_request),
            truncate=False)
        if isinstance(parsed[0], str):
            return parsed[1]  # type: ignore[return-value]
        payload, _ = parsed
        analyses = await self._analysis.analyze_payload.remote(
            payload.model_dump(mode="json", by_alias=True, exclude_none=True))
        return JSONResponse({"analyses": analyses})

    @app.get("/api/v1/context", summary="Live state and incident history of a resource")
    async def context(
        self,
        request: Request,
        # Kubernetes grammar, checked here: these go into API paths (a NUL in a name was a 500, found by fuzzing).
        kind: str = Query(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$"),
        name: str = Query(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        namespace: str | None = Query(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        second_opinion: bool = Query(default=False, description="also ask HolmesGPT (holmes.url); untrusted text"),
    ) -> JSONResponse:
        self._require_auth(request)
        target = ResourceRef(kind=kind, name=name, namespace=namespace)
        body = await self._context.get_context.remote(target, second_opinion=second_opinion)
        return JSONResponse(jsonable_encoder(body))

    @app.get("/api/v1/effectiveness", summary="How executed actions worked")
    async def effectiveness(self, request: Request) -> JSONResponse:
        self._require_auth(request)
        return JSONResponse(jsonable_encoder(await self._effectiveness.summary.remote()))

    @app.get("/api/v1/patterns", summary="History per alert signature and action")
    async def patterns(self, request: Request) -> JSONResponse:
        self._require_auth(request)
        return JSONResponse(jsonable_encoder(await self._intelligence.patterns.remote()))

    # --- approvals and audit ---------------------------------------------------------------------

    @app.get("/api/v1/approvals", summary="Approval requests (pending first by default)")
    async def list_approvals(
        self, request: Request,
        status: str | None = Query(default=None, pattern="^(pending|approved|rejected|expired|used|cancelled)$"),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> JSONResponse:
        self._require_auth(request)
        items = await self._orchestrator.list_approvals.remote(status, limit)
        return JSONResponse(jsonable_encoder({"items": items}))

    @app.post("/api/v1/approvals/{approval_id}/approve", summary="Approve (once), optionally overriding parameters")
    async def approve(self, request: Request, decision: ApprovalDecision,
                      approval_id: int = FastApiPath(ge=1, le=_MAX_ID)) -> JSONResponse:
        return await self._decide(request, approval_id, True, decision)

    @app.post("/api/v1/approvals/{approval_id}/reject", summary="Reject: the workflow ends without acting")
    async def reject(self, request: Request, decision: ApprovalDecision,
                     approval_id: int = FastApiPath(ge=1, le=_MAX_ID)) -> JSONResponse:
        return await self._decide(request, approval_id, False, decision)

    async def _decide(self, request: Request, approval_id: int, approve: bool, decision: ApprovalDecision
                      ) -> JSONResponse:
        self._require_auth(request)
        outcome = await self._orchestrator.decide.remote(approval_id, approve, decision.by, decision.reason,
                                                         decision.override)
        if "error" in outcome:
            return JSONResponse({"error": outcome["error"]}, status_code=outcome["status"])
        return JSONResponse(jsonable_encoder(outcome))

    # --- the job bus: dead letters ---------------------------------------------------------------

    @app.get("/api/v1/jobs", summary="Jobs of the durable work queue; state=dead lists the dead letters")
    async def list_jobs(
        self, request: Request,
        state: str | None = Query(default=None, pattern="^(pending|running|done|dead)$"),
        kind: str | None = Query(default=None, max_length=63, pattern="^[a-z_]+$"),
        limit: int = Query(default=100, ge=1, le=1000),
        offset: int = Query(default=0, ge=0, le=_MAX_OFFSET),
    ) -> JSONResponse:
        self._require_auth(request)
        items = await job_store.listing(self.db.pool, state=state, kind=kind, limit=limit, offset=offset)
        counts = await job_store.counts(self.db.pool)
        return JSONResponse(jsonable_encoder({"items": items, "counts": counts, "limit": limit, "offset": offset}))

    @app.post("/api/v1/jobs/{job_id}/retry", summary="Replay a dead job: due now, with fresh attempts")
    async def retry_job(self, request: Request, job_id: int = FastApiPath(ge=1, le=_MAX_ID),
                        replay: JobReplay | None = None) -> JSONResponse:
        self._require_auth(request)
        replay = replay or JobReplay()
        try:
            async with self.db.pool.acquire() as conn, conn.transaction():
                job = await job_store.retry(conn, job_id, replay.by, replay.reason)
        except job_store.JobStateError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        # Its consumer polls anyway; the nudge only saves the poll interval.
        nudge({"analyze": self._analysis, "second_opinion": self._analysis, "orchestrate": self._orchestrator,
               "workflow": self._orchestrator, "assess": self._effectiveness, "embed": self._intelligence,
               "mine": self._intelligence}.get(job["kind"]))
        return JSONResponse(jsonable_encoder({"job": job}))

    @app.get("/api/v1/audit/verify", summary="Recompute the audit hash chain; names the first tampered event")
    async def verify_audit(self, request: Request) -> JSONResponse:
        self._require_auth(request)
        # Batches from the pool: constant memory, no connection held for the whole trail.
        intact, first_bad, events = await audit_store.verify(self.db.pool)
        return JSONResponse({"intact": intact, "first_bad_event_id": first_bad, "events": events},
                            status_code=200 if intact else 409)

    # --- operations ------------------------------------------------------------------------------

    @app.get("/health", summary="Liveness")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: storage reachable")
    async def ready(self) -> JSONResponse:
        storage_ok = await self.db.ping()
        body: dict[str, Any] = {"ready": storage_ok, "storage": "ok" if storage_ok else "unreachable"}
        try:
            # An open LLM circuit degrades the analysis (the rules decide) but does not make us unready.
            body["analysis"] = await asyncio.wait_for(self._analysis.llm_status.remote(), timeout=2)
        except Exception as exc:
            body["analysis"] = {"error": type(exc).__name__}
        return JSONResponse(jsonable_encoder(body), status_code=200 if storage_ok else 503)

    @app.get("/api/v1/info", summary="Version, configuration summary and execution mode")
    async def info(self, request: Request) -> JSONResponse:
        self._require_auth(request)
        try:
            executor = await asyncio.wait_for(self._executor.status.remote(), timeout=5)
        except Exception as exc:
            executor = {"error": type(exc).__name__}
        try:
            analysis = await asyncio.wait_for(self._analysis.llm_status.remote(), timeout=5)
        except Exception as exc:
            analysis = {"error": type(exc).__name__}
        cfg = self.config
        return JSONResponse(jsonable_encoder({
            "name": "kubernaut",
            "version": __version__,
            "cluster_name": cfg.cluster_name,
            "dry_run": cfg.dry_run,
            "execution_mode": cfg.execution.mode.value,
            "executor": executor,
            "storage": {"kind": self.db.dsn_kind,
                        "data_dir": str(cfg.storage.data_dir) if self.db.dsn_kind == "embedded" else None},
            "analysis": analysis,
            "gateway": {"auth": self._auth.enabled, "max_body_bytes": cfg.gateway.max_body_bytes},
            "notifications": {"urls": len(cfg.notifications.urls)},
        }))

    @app.get("/metrics", summary="Prometheus metrics of this gateway replica", include_in_schema=False)
    async def metrics(self) -> PlainTextResponse:
        body = generate_latest(self._registry) + metrics.render_local()[0]
        return PlainTextResponse(body.decode(), media_type=CONTENT_TYPE_LATEST)

    async def check_health(self) -> None:
        if not await self.db.ping():
            raise RuntimeError("gateway: database unreachable")
