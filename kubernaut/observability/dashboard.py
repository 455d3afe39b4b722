"""The Grafana dashboard for Kubernaut, built on the metrics of :mod:`kubernaut.observability.metrics`.

Built in Python rather than hand-edited JSON so that every query is checked against the metric specs
(tests/deploy) and, on a real cluster, against Ray's metrics endpoint (tests/observability). The generated
JSON lands in ``deploy/monitoring/grafana-dashboard.yaml`` (a ConfigMap for Grafana's dashboard sidecar)
through ``scripts/gen-rayservice.py``; ``scripts/gen-rayservice.py --print-dashboard`` prints it for an
import through Grafana's UI.
"""

from __future__ import annotations

import re
from typing import Any

DASHBOARD_UID = "kubernaut-overview"

# Ray Serve's own metrics used below (names as exported by Ray 2.60; checked on a live endpoint).
SERVE_SERIES = (
    "ray_serve_num_http_requests_total",
    "ray_serve_http_request_latency_ms_bucket",
    "ray_serve_deployment_replica_healthy",
    "ray_serve_replica_processing_queries",
)

_DS = {"type": "prometheus", "uid": "${datasource}"}
_RATE = "$__rate_interval"


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": _DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def _panel(
    pid: int, title: str, kind: str, grid: tuple[int, int, int, int], targets: list[tuple[str, str]],
    *, unit: str = "short", description: str = "", stacked: bool = False,
    extra_defaults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    x, y, w, h = grid
    defaults: dict[str, Any] = {"unit": unit}
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "fillOpacity": 10, "lineWidth": 1, "showPoints": "never",
                              "stacking": {"mode": "normal" if stacked else "none", "group": "A"}}
    defaults.update(extra_defaults or {})
    panel: dict[str, Any] = {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }
    if kind in ("stat", "bargauge"):
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "orientation": "horizontal"}
    return panel


def _row(pid: int, title: str, y: int) -> dict[str, Any]:
    return {"id": pid, "type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def build_dashboard() -> dict[str, Any]:
    """The dashboard model (Grafana schema 39): ingest, funnel, actions, approvals, LLM, Serve health."""
    panels = [
        _row(1, "Ingest", 0),
        _panel(2, "Alerts received / rejected per second", "timeseries", (0, 1, 12, 8), [
            (f"sum by (status) (rate(ray_kubernaut_alerts_received_total[{_RATE}]))", "received {{status}}"),
            (f"sum by (reason) (rate(ray_kubernaut_alerts_rejected_total[{_RATE}]))", "rejected {{reason}}"),
            (f"sum by (kind) (rate(ray_kubernaut_alerts_deduplicated_total[{_RATE}]))", "deduplicated {{kind}}"),
            (f"sum by (reason) (rate(ray_kubernaut_auth_denied_total[{_RATE}]))", "auth denied {{reason}}"),
        ], unit="reqps", description="Durably accepted alerts, refused webhook deliveries, deduplicated alerts, and "
                                     "API requests refused for their credentials or permissions."),
        _panel(3, "Webhook latency p50 / p99", "timeseries", (12, 1, 12, 8), [
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(ray_kubernaut_webhook_duration_seconds_bucket{{outcome=\"accepted\"}}[{_RATE}])))", "p99 accept"),
            ("histogram_quantile(0.50, sum by (le) "
             f"(rate(ray_kubernaut_webhook_duration_seconds_bucket{{outcome=\"accepted\"}}[{_RATE}])))", "p50 accept"),
            ("histogram_quantile(0.99, sum by (le) "
             f"(rate(ray_serve_http_request_latency_ms_bucket{{application=\"kubernaut\"}}[{_RATE}]))) / 1000",
             "p99 Serve HTTP (all routes)"),
        ], unit="s", description="Time to durable accept (gateway) and end-to-end HTTP latency through the Serve "
                                 "proxy. Ray histograms approximate sums with bucket midpoints; quantiles "
                                 "come from buckets."),
        _row(4, "Incidents", 9),
        _panel(5, "Incident funnel (selected range)", "bargauge", (0, 10, 12, 8), [
            ("sort_desc(sum by (phase) (increase(ray_kubernaut_incident_transitions_total[$__range])))",
             "{{phase}}"),
        ], description="Incidents entering each phase over the selected time range."),
        _panel(6, "Open incidents by phase", "timeseries", (12, 10, 12, 8), [
            ("max by (phase) (ray_kubernaut_incidents)", "{{phase}}"),
        ], stacked=True, description="Counted from the database; max across replicas (each reports the same "
                                     "count)."),
        _row(7, "Actions and approvals", 18),
        _panel(8, "Actions per second by outcome", "timeseries", (0, 19, 8, 8), [
            (f"sum by (outcome, mode) (rate(ray_kubernaut_actions_total[{_RATE}]))", "{{outcome}} ({{mode}})"),
        ], unit="ops", stacked=True),
        _panel(9, "Action success rate (1h)", "stat", (8, 19, 4, 8), [
            ("sum(increase(ray_kubernaut_actions_total{outcome=\"succeeded\"}[1h])) / "
             "clamp_min(sum(increase(ray_kubernaut_actions_total{outcome=~\"succeeded|failed|rolled_back\"}[1h])),"
             " 1)", "success rate"),
        ], unit="percentunit", extra_defaults={"min": 0, "max": 1}),
        _panel(10, "Approval queue", "timeseries", (12, 19, 6, 8), [
            ("max(ray_kubernaut_approvals_pending)", "pending"),
            (f"sum by (decision) (increase(ray_kubernaut_approval_decisions_total[{_RATE}]))", "{{decision}}"),
        ]),
        _panel(11, "Effectiveness score p50 / p10", "timeseries", (18, 19, 6, 8), [
            (f"histogram_quantile(0.5, sum by (le) (rate(ray_kubernaut_assessment_score_bucket[{_RATE}])))", "p50"),
            (f"histogram_quantile(0.1, sum by (le) (rate(ray_kubernaut_assessment_score_bucket[{_RATE}])))", "p10"),
        ], extra_defaults={"min": 0, "max": 1}),
        _panel(12, "Actions by name (selected range)", "bargauge", (0, 27, 12, 8), [
            ("sort_desc(sum by (action, outcome) (increase(ray_kubernaut_actions_total[$__range])))",
             "{{action}} {{outcome}}"),
        ]),
        _panel(13, "Action duration p95", "timeseries", (12, 27, 12, 8), [
            ("histogram_quantile(0.95, sum by (le, action) "
             f"(rate(ray_kubernaut_action_duration_seconds_bucket[{_RATE}])))", "{{action}}"),
        ], unit="s"),
        _row(14, "Analysis and LLM", 35),
        _panel(15, "Analyses per second by engine", "timeseries", (0, 36, 8, 8), [
            (f"sum by (engine, outcome) (rate(ray_kubernaut_analyses_total[{_RATE}]))", "{{engine}} {{outcome}}"),
        ], unit="ops", stacked=True),
        _panel(16, "Analysis latency p95 by engine", "timeseries", (8, 36, 8, 8), [
            ("histogram_quantile(0.95, sum by (le, engine) "
             f"(rate(ray_kubernaut_analysis_duration_seconds_bucket[{_RATE}])))", "{{engine}}"),
        ], unit="s"),
        _panel(17, "LLM circuit (0 closed, 1 half-open, 2 open)", "stat", (16, 36, 8, 8), [
            ("max by (provider) (ray_kubernaut_llm_circuit_state)", "{{provider}}"),
        ], extra_defaults={"thresholds": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "orange", "value": 1}, {"color": "red", "value": 2}]}}),
        _panel(18, "LLM cost per day (USD)", "timeseries", (0, 44, 8, 8), [
            ("sum by (model) (increase(ray_kubernaut_llm_cost_usd_total[1d]))", "{{model}}"),
        ], unit="currencyUSD"),
        _panel(19, "LLM tokens per second", "timeseries", (8, 44, 8, 8), [
            (f"sum by (model, kind) (rate(ray_kubernaut_llm_tokens_total[{_RATE}]))", "{{model}} {{kind}}"),
        ]),
        _panel(20, "LLM requests per second by outcome", "timeseries", (16, 44, 8, 8), [
            (f"sum by (model, outcome) (rate(ray_kubernaut_llm_requests_total[{_RATE}]))", "{{model}} {{outcome}}"),
        ], unit="reqps"),
        _row(21, "Ray Serve", 52),
        _panel(22, "Healthy replicas by deployment", "timeseries", (0, 53, 8, 8), [
            ("sum by (deployment) (ray_serve_deployment_replica_healthy{application=\"kubernaut\"})",
             "{{deployment}}"),
        ]),
        _panel(23, "HTTP requests per second by status", "timeseries", (8, 53, 8, 8), [
            (f"sum by (status_code) (rate(ray_serve_num_http_requests_total{{application=\"kubernaut\"}}[{_RATE}]))",
             "{{status_code}}"),
        ], unit="reqps"),
        _panel(24, "Requests being processed by deployment", "timeseries", (16, 53, 8, 8), [
            ("sum by (deployment) (ray_serve_replica_processing_queries{application=\"kubernaut\"})",
             "{{deployment}}"),
            (f"sum(rate(ray_kubernaut_notifications_total{{outcome=\"failed\"}}[{_RATE}]))", "notifications failed/s"),
        ]),
        _panel(25, "Job bus: dead letters, replays, lost leases (per hour)", "timeseries", (0, 61, 12, 8), [
            ("sum by (kind) (increase(ray_kubernaut_jobs_dead_lettered_total[1h]))", "dead {{kind}}"),
            ("sum by (kind) (increase(ray_kubernaut_jobs_replayed_total[1h]))", "replayed {{kind}}"),
            ("sum by (kind) (increase(ray_kubernaut_job_leases_lost_total[1h]))", "lease lost {{kind}}"),
        ]),
    ]
    return {
        "uid": DASHBOARD_UID,
        "title": "Kubernaut",
        "description": "AlertManager alerts to verified remediations: ingest, incident funnel, actions, approvals, "
                       "LLM cost and latency, Ray Serve health.",
        "tags": ["kubernaut", "ray"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "options": [],
        }]},
        "annotations": {"list": []},
        "panels": panels,
    }


_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"\{[^}]*\}")
_NAME = re.compile(r"\bray_[a-zA-Z0-9_]+\b")


def metric_names(expr: str) -> set[str]:
    """Ray metric names (``ray_…``) a PromQL expression reads (label matchers and groupings stripped)."""
    return set(_NAME.findall(_SELECTOR.sub("", _GROUPING.sub("", expr))))


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every query in the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
