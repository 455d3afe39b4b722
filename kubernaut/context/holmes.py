"""An optional second opinion from HolmesGPT (robusta-dev/holmesgpt) on a target in trouble.

HolmesGPT runs as an HTTP server; ``POST {url}/api/investigate`` takes an alert-like request
(``source``, ``title``, ``description``, ``subject``, ``context``) and answers
``{"analysis": "<markdown>", "tool_calls": [...], "instructions": [...]}``.

What is sent is deliberately small and non-secret: alert names, the target's kind/name/namespace,
replica counts, pod and event *reasons*, and the alerts' own summary/description annotations — never
environment variables, other annotations, event messages or logs.

The answer is **untrusted data**. It is clipped, stored and shown as text; nothing here (or anywhere
else) parses actions out of it. Failures never raise to callers: they come back as
``SecondOpinion(available=False, error=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from kubernaut.breaker import CircuitBreaker
from kubernaut.config.settings import HolmesConfig
from kubernaut.context.models import ResourceContext
from kubernaut.models.resource import ResourceRef

logger = logging.getLogger(__name__)

NOT_CONFIGURED = "HolmesGPT is not configured (holmes.url)"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_TOOL_NAMES = 50
_MAX_PODS = 10
_MAX_EVENTS = 10
_MAX_ALERTS = 10


class SecondOpinion(BaseModel):
    """What HolmesGPT said, as inert text, and how the call went."""

    source: Literal["holmesgpt"] = "holmesgpt"
    url: str | None = None
    available: bool = False
    analysis: str = Field(default="", description="untrusted markdown from HolmesGPT; display only")
    truncated: bool = False
    tool_calls: int = 0
    tool_names: list[str] = Field(default_factory=list)
    latency_ms: float = 0.0
    status_code: int | None = None
    error: str | None = None


def _clip(value: Any, limit: int) -> str:
    text = _CONTROL.sub(" ", str(value if value is not None else ""))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def holmes_summary(ctx: ResourceContext, alerts: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The non-secret facts of ``ctx`` worth sending to HolmesGPT (input of :meth:`HolmesClient.second_opinion`).

    ``alerts`` are ``{"name", "summary", "description"}``: only those two annotations are ever sent.
    """
    summary: dict[str, Any] = {"target": ctx.target.model_dump(mode="json")}
    if ctx.workload is not None:
        w = ctx.workload
        summary["workload"] = {"kind": w.kind, "name": w.name, "namespace": w.namespace, "replicas": w.replicas,
                               "ready_replicas": w.ready_replicas, "available_replicas": w.available_replicas}
    pods = []
    for pod in ctx.pods[:_MAX_PODS]:
        reasons = sorted({r for c in pod.containers for r in (c.reason, c.last_termination_reason) if r})
        pods.append({"name": pod.name, "phase": pod.phase, "ready": pod.ready, "restarts": pod.restarts,
                     "reasons": reasons})
    if pods:
        summary["pods"] = pods
    events = [{"type": e.type, "reason": e.reason, "count": e.count, "object": e.object}
              for e in ctx.events[:_MAX_EVENTS] if e.reason]
    if events:
        summary["events"] = events
    picked = [{"name": a.get("name"), "summary": a.get("summary"), "description": a.get("description")}
              for a in list(alerts)[:_MAX_ALERTS]]
    if picked:
        summary["alerts"] = picked
    return summary


def _describe(target: ResourceRef, signals: Sequence[str], summary: Mapping[str, Any]) -> str:
    """A short, structured description built only from known keys of ``summary`` (nothing else leaks)."""
    lines = [f"Target: {target.kind} {target.name}" + (f" in namespace {target.namespace}" if target.namespace else "")]
    if signals:
        lines.append("Firing alerts: " + ", ".join(_clip(s, 100) for s in signals[:_MAX_ALERTS]))
    workload = summary.get("workload")
    if isinstance(workload, Mapping):
        lines.append(f"Workload: {_clip(workload.get('kind'), 63)} {_clip(workload.get('name'), 253)}, "
                     f"replicas {workload.get('replicas')}, ready {workload.get('ready_replicas')}, "
                     f"available {workload.get('available_replicas')}")
    for pod in list(summary.get("pods") or [])[:_MAX_PODS]:
        if isinstance(pod, Mapping):
            reasons = ", ".join(_clip(r, 63) for r in list(pod.get("reasons") or [])[:5]) or "none"
            lines.append(f"Pod {_clip(pod.get('name'), 253)}: phase {_clip(pod.get('phase'), 30)}, "
                         f"ready {bool(pod.get('ready'))}, restarts {pod.get('restarts')}, reasons: {reasons}")
    events = [e for e in list(summary.get("events") or [])[:_MAX_EVENTS] if isinstance(e, Mapping)]
    if events:
        lines.append("Recent events: " + "; ".join(
            f"{_clip(e.get('type'), 20)} {_clip(e.get('reason'), 63)} x{e.get('count')} "
            f"on {_clip(e.get('object'), 120)}"
            for e in events))
    for alert in list(summary.get("alerts") or [])[:_MAX_ALERTS]:
        if isinstance(alert, Mapping):
            text = " — ".join(_clip(alert.get(k), 400) for k in ("summary", "description") if alert.get(k))
            lines.append(f"Alert {_clip(alert.get('name'), 100)}: {text or 'no summary'}")
    return "\n".join(lines)


class _CallFailed(Exception):
    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class _Unavailable(_CallFailed):
    """The peer is down or failing (counts against the circuit breaker)."""


class _BadAnswer(_CallFailed):
    """The peer answered, but not usefully (4xx, not JSON): no verdict on its health."""


class HolmesClient:
    """Asks HolmesGPT's ``/api/investigate``; per replica: a concurrency limit and a circuit breaker."""

    def __init__(self, config: HolmesConfig, cluster_name: str | None = None) -> None:
        if config.url is None:
            raise ValueError(NOT_CONFIGURED)
        self.config = config
        self.url = f"{config.url}/api/investigate"
        self.cluster_name = cluster_name
        self.breaker = CircuitBreaker(failure_threshold=config.breaker_failures, reset_s=config.breaker_reset_s)
        self._slots = asyncio.Semaphore(config.max_concurrent)

    def request_body(self, target: ResourceRef, signals: Sequence[str], summary: Mapping[str, Any]) -> dict[str, Any]:
        names = ", ".join(_clip(s, 100) for s in signals[:_MAX_ALERTS]) or "Unhealthy resource"
        subject: dict[str, Any] = {"kind": target.kind, "name": target.name, "namespace": target.namespace}
        if self.cluster_name:
            subject["cluster"] = self.cluster_name
        return {
            "source": "prometheus",
            "title": _clip(f"{names} on {target}", 300),
            "description": _describe(target, signals, summary),
            "subject": subject,
            "context": {"requested_by": "kubernaut", "signals": [_clip(s, 100) for s in signals[:_MAX_ALERTS]]},
            "source_instance_id": "kubernaut",
            "include_tool_calls": True,
            "include_tool_call_results": False,
        }

    async def second_opinion(self, target: ResourceRef, signals: list[str],
                             summary: Mapping[str, Any]) -> SecondOpinion:
        """HolmesGPT's view of ``target``; never raises for transport, HTTP or JSON problems."""
        started = time.monotonic()

        def failed(error: str, status_code: int | None = None) -> SecondOpinion:
            return SecondOpinion(url=self.config.url, available=False, error=error, status_code=status_code,
                                 latency_ms=round((time.monotonic() - started) * 1000, 1))

        if not self.breaker.allow():
            return failed(f"circuit open after repeated failures ({self.breaker.last_error}); "
                          f"retry in {self.breaker.retry_in_s() or 0:.0f}s")
        body = self.request_body(target, signals, summary)
        try:
            raw, status = await asyncio.wait_for(self._post(body), timeout=self.config.timeout_s)
        except (asyncio.TimeoutError, httpx.TimeoutException):
            error = f"HolmesGPT did not answer within {self.config.timeout_s:g}s"
            self.breaker.record_failure(error)
            return failed(error)
        except _Unavailable as exc:
            self.breaker.record_failure(str(exc))
            return failed(str(exc), exc.status_code)
        except _BadAnswer as exc:
            self.breaker.release()
            return failed(str(exc), exc.status_code)
        except asyncio.CancelledError:
            self.breaker.release()
            raise
        except Exception as exc:  # an optional advisor must never break its caller
            self.breaker.release()
            logger.warning("HolmesGPT call failed unexpectedly: %r", exc)
            return failed(f"{type(exc).__name__}: {_clip(exc, 200)}")
        self.breaker.record_success()
        return self._opinion(raw, status, started)

    async def _post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        headers = {"Accept": "application/json"}
        if self.config.token is not None:
            headers["Authorization"] = f"Bearer {self.config.token.get_secret_value()}"
        async with self._slots:
            try:
                async with httpx.AsyncClient(timeout=self.config.timeout_s, follow_redirects=False) as http:
                    response = await http.post(self.url, json=body, headers=headers)
            except httpx.TimeoutException:
                raise
            except httpx.HTTPError as exc:
                raise _Unavailable(f"HolmesGPT unreachable: {type(exc).__name__}: {_clip(exc, 200)}") from None
        status = response.status_code
        if status >= 500 or status == 429:
            raise _Unavailable(f"HolmesGPT answered HTTP {status}: {_clip(response.text, 200)}", status)
        if status != 200:
            raise _BadAnswer(f"HolmesGPT answered HTTP {status}: {_clip(response.text, 200)}", status)
        try:
            raw = response.json()
        except ValueError:
            raise _BadAnswer(f"HolmesGPT answered invalid JSON: {_clip(response.text, 100)!r}", status) from None
        if not isinstance(raw, dict):
            raise _BadAnswer(f"HolmesGPT answered JSON {type(raw).__name__}, expected an object", status)
        return raw, status

    def _opinion(self, raw: dict[str, Any], status: int, started: float) -> SecondOpinion:
        analysis = raw.get("analysis")
        text = _CONTROL.sub(" ", analysis if isinstance(analysis, str) else "")
        truncated = len(text) > self.config.max_chars
        if truncated:
            text = text[: self.config.max_chars - 1] + "…"
        calls = raw.get("tool_calls") if isinstance(raw.get("tool_calls"), list) else []
        names = []
        for call in calls[:_MAX_TOOL_NAMES]:
            name = (call.get("tool_name") or call.get("name")) if isinstance(call, dict) else None
            if isinstance(name, str) and name:
                names.append(_clip(name, 100))
        return SecondOpinion(
            url=self.config.url, available=bool(text), analysis=text, truncated=truncated, tool_calls=len(calls),
            tool_names=names, status_code=status, latency_ms=round((time.monotonic() - started) * 1000, 1),
            error=None if text else "HolmesGPT returned no analysis",
        )


def not_configured() -> dict[str, Any]:
    return SecondOpinion(available=False, error=NOT_CONFIGURED).model_dump(mode="json")
