"""Pytest plugin: a real Prometheus (Debian package) scraping an in-process exporter, with alert rules
sent to a real AlertManager — the sources the Effectiveness Monitor reads.

Fixture ``prometheus_stack`` (function scope) gives a :class:`PrometheusStack`:

* ``exporter.set(namespace, deployment, value)`` sets the gauge ``app_error_ratio`` the tests steer;
* Prometheus (scrape and rule evaluation every second) fires ``AppErrorRateHigh`` while the ratio is
  above 0.5 and resolves it when it drops, through AlertManager's API like in production;
* ``stop_alertmanager()`` / ``start_alertmanager()`` simulate an outage (same port, same data).

Skips when the binaries are missing (scripts/test-prepare.d/prometheus.sh and alertmanager.sh install them).
Register with ``pytest_plugins = [..., "tests.plugins.prometheus"]`` in the root conftest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.sinks import free_port

ALERT_NAME = "AppErrorRateHigh"
METRIC = "app_error_ratio"


class Exporter:
    """A /metrics endpoint in this process (prometheus_client), with one gauge the test steers."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self.gauge = Gauge(METRIC, "Share of failing requests (test exporter)", ["namespace", "deployment"],
                           registry=self.registry)
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def set(self, namespace: str, deployment: str, value: float) -> None:
        self.gauge.labels(namespace=namespace, deployment=deployment).set(value)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _wait_ready(url: str, timeout: float, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} at {url} not ready after {timeout}s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@dataclass
class PrometheusStack:
    directory: Path
    exporter: Exporter
    am_port: int = field(default_factory=free_port)
    prom_port: int = field(default_factory=free_port)
    alertmanager: subprocess.Popen[bytes] | None = None
    prometheus: subprocess.Popen[bytes] | None = None

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.am_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prom_port}"

    def start_alertmanager(self) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary is not None
        config = self.directory / "alertmanager.yml"
        config.write_text(yaml.safe_dump({
            "route": {"receiver": "null", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "2s",
                      "repeat_interval": "1h"},
            "receivers": [{"name": "null"}],
        }))
        log = self.directory / "alertmanager.log"
        self.alertmanager = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.path={self.directory / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.am_port}", "--cluster.listen-address="],
            stdout=log.open("a"), stderr=subprocess.STDOUT)
        _wait_ready(self.alertmanager_url, 15, "AlertManager", self.alertmanager, log)

    def stop_alertmanager(self) -> None:
        _stop(self.alertmanager)
        self.alertmanager = None

    def start_prometheus(self) -> None:
        binary = shutil.which("prometheus")
        assert binary is not None
        rules = self.directory / "rules.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "kubernaut-test", "rules": [{
            "alert": ALERT_NAME, "expr": f"{METRIC} > 0.5", "for": "0s", "labels": {"severity": "critical"},
            "annotations": {"summary": "error ratio above 50%"}}]}]}))
        config = self.directory / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "app", "static_configs": [
                {"targets": [f"127.0.0.1:{self.exporter.port}"]}]}],
        }))
        log = self.directory / "prometheus.log"
        self.prometheus = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={self.directory / 'prom-data'}",
             f"--web.listen-address=127.0.0.1:{self.prom_port}"],
            stdout=log.open("a"), stderr=subprocess.STDOUT)
        _wait_ready(self.prometheus_url, 30, "Prometheus", self.prometheus, log)

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        return _get_json(url)["data"]["result"]

    def active_alerts(self, alertname: str = ALERT_NAME) -> list[dict[str, Any]]:
        """Alerts AlertManager holds as not resolved (its API v2), for this alert name."""
        query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
        try:
            alerts = _get_json(f"{self.alertmanager_url}/api/v2/alerts?{query}")
        except OSError:
            return []
        return [a for a in alerts if a.get("status", {}).get("state") != "resolved"]

    def stop(self) -> None:
        _stop(self.prometheus)
        self.stop_alertmanager()
        self.exporter.stop()


@pytest.fixture
def prometheus_stack(tmp_path: Path) -> Iterator[PrometheusStack]:
    if not (shutil.which("prometheus") and (shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"))):
        pytest.skip("Prometheus/AlertManager not installed (scripts/test-prepare.d/prometheus.sh, alertmanager.sh)")
    stack = PrometheusStack(tmp_path, Exporter())
    try:
        stack.start_alertmanager()
        stack.start_prometheus()
        yield stack
    finally:
        stack.stop()
