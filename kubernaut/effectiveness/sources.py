"""The two HTTP sources of an assessment: AlertManager's API v2 (is the alert still active?) and
Prometheus' HTTP API (metrics before and after). Both are optional and non-blocking (httpx.AsyncClient)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from kubernaut.config.settings import MetricQuery
from kubernaut.effectiveness.models import Component
from kubernaut.effectiveness.scoring import relative_improvement
from kubernaut.models.resource import ResourceRef

# Label keys whose value names the workload (or one of its pods) an alert is about.
_TARGET_LABELS = ("pod", "deployment", "statefulset", "daemonset", "replicaset", "node", "persistentvolumeclaim",
                  "workload", "job_name", "cronjob")
# Kubernetes object names: anything else never reaches a PromQL string (alert data is untrusted).
_SAFE_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


class SourceUnavailable(Exception):
    """AlertManager or Prometheus did not answer usefully now: retry later."""


@dataclass(frozen=True)
class FiringAlert:
    """An alert of the incident as last seen in a webhook."""

    fingerprint: str
    alertname: str
    labels: dict[str, str]
    status: str
    received_at: datetime


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _names_target(labels: dict[str, str], target: ResourceRef) -> bool:
    for key in _TARGET_LABELS:
        value = labels.get(key)
        if value and (value == target.name or value.startswith(f"{target.name}-")):
            return True
    return False


@dataclass
class AlertChecker:
    base_url: str | None
    token: str | None = None
    timeout_s: float = 5.0

    async def _active(self, alertname: str, namespace: str | None) -> list[dict[str, Any]]:
        assert self.base_url is not None
        filters = [f'alertname="{_matcher_value(alertname)}"']
        if namespace:
            filters.append(f'namespace="{_matcher_value(namespace)}"')
        params = [("filter", f) for f in filters] + [("active", "true"), ("silenced", "true"),
                                                     ("inhibited", "true"), ("unprocessed", "true")]
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, headers=_auth(self.token)) as http:
                response = await http.get(f"{self.base_url.rstrip('/')}/api/v2/alerts", params=params)
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"AlertManager: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise SourceUnavailable(f"AlertManager: HTTP {response.status_code}")
        if response.status_code != 200:
            # A 4xx will not heal by retrying (bad URL, auth): say so, but do not block the assessment.
            raise PermissionError(f"AlertManager answered HTTP {response.status_code}: {response.text[:200]}")
        return [a for a in response.json() if (a.get("status") or {}).get("state") != "resolved"]

    async def check(self, alerts: list[FiringAlert], target: ResourceRef, now: datetime) -> Component:
        if not alerts:
            return Component(name="alert", reason="the incident has no recorded alert")
        names = sorted({a.alertname for a in alerts})
        if all(a.status == "resolved" for a in alerts):
            return Component(name="alert", value=1.0, reason=f"resolved webhook(s) received for {', '.join(names)}",
                             detail={"source": "webhooks"})
        if not self.base_url:
            return Component(name="alert", reason="no AlertManager API configured and no resolved webhook yet")
        fingerprints = {a.fingerprint for a in alerts}
        label_sets = [a.labels for a in alerts]
        still: list[str] = []
        try:
            for name in names:
                namespaces = {a.labels.get("namespace") for a in alerts if a.alertname == name}
                for namespace in sorted(namespaces, key=lambda v: v or ""):
                    for active in await self._active(name, namespace):
                        labels = active.get("labels") or {}
                        if (active.get("fingerprint") in fingerprints or labels in label_sets
                                or _names_target(labels, target)):
                            still.append(f"{name}{{{', '.join(f'{k}={v}' for k, v in sorted(labels.items()))}}}")
        except PermissionError as exc:
            return Component(name="alert", reason=str(exc))
        if still:
            return Component(name="alert", value=0.0, reason=f"still active in AlertManager: {still[0]}"
                             + (f" (+{len(still) - 1} more)" if len(still) > 1 else ""),
                             detail={"source": "alertmanager", "active": still[:10]})
        return Component(name="alert", value=1.0, reason=f"{', '.join(names)} no longer active in AlertManager",
                         detail={"source": "alertmanager"})


def _matcher_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def render_query(template: str, target: ResourceRef) -> str | None:
    """Fill a PromQL template for the target; None when the target's names are not plain object names."""
    namespace = target.namespace or ""
    if not _SAFE_NAME.match(target.name) or (namespace and not _SAFE_NAME.match(namespace)):
        return None
    name_re = target.name.replace(".", "[.]")
    pod_regex = name_re if target.kind == "Pod" else f"{name_re}(-.+)?"
    return (template.replace("{namespace}", namespace).replace("{name}", target.name)
            .replace("{kind}", target.kind).replace("{pod_regex}", pod_regex))


@dataclass
class MetricsChecker:
    base_url: str | None
    queries: list[MetricQuery]
    token: str | None = None
    timeout_s: float = 5.0

    async def _value(self, http: httpx.AsyncClient, query: str, at: datetime) -> float | None:
        assert self.base_url is not None
        try:
            response = await http.get(f"{self.base_url.rstrip('/')}/api/v1/query",
                                      params={"query": query, "time": f"{at.timestamp():.3f}"})
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"Prometheus: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise SourceUnavailable(f"Prometheus: HTTP {response.status_code}")
        if response.status_code != 200:
            raise PermissionError(f"Prometheus answered HTTP {response.status_code}: {response.text[:200]}")
        data = response.json().get("data") or {}
        result = data.get("result")
        if data.get("resultType") == "scalar":
            samples = [result]
        elif data.get("resultType") == "vector":
            samples = [r.get("value") for r in result or []]
        else:
            return None
        values = [float(s[1]) for s in samples if s and len(s) == 2]
        values = [v for v in values if math.isfinite(v)]
        return sum(values) if values else None

    async def check(self, target: ResourceRef, before: datetime, after: datetime) -> Component:
        if not self.base_url:
            return Component(name="metrics", reason="no Prometheus configured")
        measured: dict[str, dict[str, float]] = {}
        skipped: list[str] = []
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, headers=_auth(self.token)) as http:
                for metric in self.queries:
                    query = render_query(metric.query, target)
                    if query is None:
                        return Component(name="metrics", reason=f"target name {target.name!r} is not usable in PromQL")
                    old = await self._value(http, query, before)
                    new = await self._value(http, query, after)
                    gain = None if old is None or new is None else relative_improvement(old, new, metric.better)
                    if gain is None:
                        skipped.append(metric.name)
                        continue
                    measured[metric.name] = {"before": old, "after": new, "improvement": round(gain, 4)}
        except PermissionError as exc:
            return Component(name="metrics", reason=str(exc))
        if not measured:
            return Component(name="metrics", reason=f"no usable before/after samples ({', '.join(skipped) or 'none'})",
                             detail={"skipped": skipped})
        value = sum(m["improvement"] for m in measured.values()) / len(measured)
        text = ", ".join(f"{k} {m['before']:.3g}→{m['after']:.3g}" for k, m in measured.items())
        return Component(name="metrics", value=round(value, 4), reason=f"relative improvement {value:.2f} ({text})",
                         detail={"measured": measured, "skipped": skipped})
