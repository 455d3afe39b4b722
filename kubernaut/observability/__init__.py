"""Observability helpers: application metrics through Ray's metrics API, structured JSON logs.

* :mod:`kubernaut.observability.metrics` — one call per event (``alert_received``, ``action_executed`` …);
  every metric is exported on each Ray node's Prometheus endpoint (``ray_kubernaut_*``) and mirrored in a
  process-local registry for the gateway's ``/metrics`` route.
* :mod:`kubernaut.observability.logs` — ``configure_logging`` and ``log_context``: ``request_id`` /
  ``incident_id`` on every record, written by Ray Serve's own handler (JSON with ``encoding: JSON``).
* :mod:`kubernaut.observability.dashboard` — the Grafana dashboard built on those metrics.
"""

from kubernaut.observability.logs import configure_logging, log_context
from kubernaut.observability.metrics import METRICS, MetricSpec

__all__ = ["METRICS", "MetricSpec", "configure_logging", "log_context"]
