"""Application metrics and structured logs on a real multi-node Ray cluster.

The cluster is the development one of ``cluster/dev/ray-dev-cluster.sh`` (a head with no CPUs and one
worker, each its own raylet with its own metrics port), so this also exercises that script. A Serve
deployment records every Kubernaut metric through :mod:`kubernaut.observability.metrics` and logs
through :mod:`kubernaut.observability.logs`; the test scrapes the nodes' real Prometheus endpoints and
reads Serve's real replica log file. Metrics export is periodic: everything is polled with a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kubernaut.observability.dashboard import SERVE_SERIES, build_dashboard, metric_names, panel_queries
from kubernaut.observability.metrics import METRICS
from tests.plugins.kube_testenv import wait_until
from tests.support.prometheus_text import _samples, _value

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_SCRIPT = REPO_ROOT / "cluster" / "dev" / "ray-dev-cluster.sh"
APP_NAME = "kubernaut"  # the dashboard's Serve panels filter on application="kubernaut"
INCIDENT_ID = 4242


# -- the Serve deployment that records through the helpers (imported by the workers by module path) ------


def _probe_deployment():
    from ray import serve

    @serve.deployment(name="probe", ray_actor_options={"num_cpus": 0.1}, logging_config={"encoding": "JSON"})
    class MetricsProbe:
        def __init__(self) -> None:
            from kubernaut.observability.logs import configure_logging

            configure_logging("INFO")

        async def __call__(self, request) -> dict:
            import logging

            from kubernaut.execution.catalog import ACTION_NAMES
            from kubernaut.observability import metrics as m
            from kubernaut.observability.logs import log_context, serve_request_id

            action = ACTION_NAMES[0]
            m.alert_received("firing", 3)
            m.alert_received("resolved", 1)
            m.alert_rejected("unauthorized")
            m.alert_deduplicated("redelivery", 2)
            m.webhook_handled("accepted", 0.05)
            m.incident_transition("new", "spoke-b")
            m.incidents_by_phase({"new": 2, "analyzed": 1})
            m.analysis_completed("llm:probe-model", "ok", 1.2, prompt_tokens=100, completion_tokens=20,
                                 cost_usd=0.01)
            m.llm_request("probe-model", "ok")
            m.llm_circuit_state("vllm", "open")
            m.cluster_circuit_state("spoke-b", "open")
            m.event_watch_owned("spoke-b", True)
            m.action_executed(action, "succeeded", dry_run=True, seconds=0.3, cluster="spoke-b")
            m.action_executed("not-a-catalog-action", "rejected", dry_run=False)
            m.approvals_pending(4)
            m.approval_decided("approved", "spoke-b")
            m.assessment_recorded(action, 0.8)
            m.notification_sent(False)
            m.notification_receiver_failures("pager", 3)
            m.job_dead_lettered("notify")
            m.job_replayed("notify")
            m.job_lease_lost("workflow")
            m.auth_denied("invalid_credentials")
            m.audit_head(7)
            request_id = serve_request_id()
            with log_context(request_id=request_id, incident_id=INCIDENT_ID):
                logging.getLogger("kubernaut.probe").info("probe recorded %d metrics", 21)
            return {"action": action, "request_id": request_id}

    return MetricsProbe


# Run in a subprocess: the pytest process may already be connected to another Ray cluster (serve_app).
_DRIVER = """
import sys
import ray
from ray import serve
from tests.observability.test_metrics_export import APP_NAME, _probe_deployment
address, port = sys.argv[1], int(sys.argv[2])
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": port})
serve.run(_probe_deployment().bind(), name=APP_NAME, route_prefix="/", blocking=False)
print("deployed")
"""


@dataclass(frozen=True)
class DevCluster:
    address: str
    serve_port: int
    metrics_ports: tuple[int, ...]  # head, then workers
    temp_dir: Path


def _free_ports(count: int) -> list[int]:
    socks, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


def _free_block() -> int:
    """A base port with 200 free ports above it (the script's per-node port blocks)."""
    for base in range(31000, 60000, 1000):
        ok = True
        for port in range(base, base + 200):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


@pytest.fixture(scope="module")
def dev_cluster() -> Iterator[DevCluster]:
    # Short: Ray's Unix sockets live below it and AF_UNIX paths are limited to 107 bytes.
    state = Path(tempfile.mkdtemp(prefix="krd-", dir="/tmp"))
    gcs, dashboard, metrics_head, metrics_worker, serve_port = _free_ports(5)
    # The script numbers metrics ports head=N, worker i=N+i: pick N with N+1 free too.
    metrics_base = metrics_head if metrics_worker == metrics_head + 1 else _consecutive_pair()
    env = {
        **os.environ,
        "RAY_DEV_DIR": str(state),
        "RAY_DEV_WORKERS": "1",
        "RAY_DEV_WORKER_CPUS": "1",
        "RAY_DEV_GCS_PORT": str(gcs),
        "RAY_DEV_DASHBOARD_PORT": str(dashboard),
        "RAY_DEV_METRICS_PORT": str(metrics_base),
        "RAY_DEV_PORT_BASE": str(_free_block()),
        "RAY_BIN": str(Path(sys.executable).parent / "ray"),
        "RAY_AUTH_MODE": "disabled",
        # Export metrics every second instead of every 10 s (read by every Ray process of the cluster).
        "RAY_metrics_report_interval_ms": "1000",
        # Workers import this test module (the probe deployment) by path.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    env.pop("RAY_ADDRESS", None)
    up = subprocess.run(["bash", str(DEV_SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=240,
                        check=False)
    try:
        assert up.returncode == 0, f"ray-dev-cluster.sh up failed:\n{up.stderr[-3000:]}"
        address = up.stdout.strip().splitlines()[-1]
        assert address == f"127.0.0.1:{gcs}"
        driver = subprocess.run([sys.executable, "-c", _DRIVER, address, str(serve_port)], env=env,
                                capture_output=True, text=True, timeout=240, check=False, cwd=REPO_ROOT)
        assert driver.returncode == 0 and "deployed" in driver.stdout, driver.stderr[-3000:]
        yield DevCluster(address, serve_port, (metrics_base, metrics_base + 1), state / "ray")
    finally:
        subprocess.run(["bash", str(DEV_SCRIPT), "down"], env=env, capture_output=True, text=True, timeout=120,
                       check=False)
        shutil.rmtree(state, ignore_errors=True)


def _consecutive_pair() -> int:
    for _ in range(50):
        (port,) = _free_ports(1)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


@pytest.fixture(scope="module")
def probed(dev_cluster: DevCluster) -> dict:
    """Call the probe once through the Serve proxy (which also produces Serve's HTTP metrics)."""

    def call() -> dict | None:
        req = urllib.request.Request(f"http://127.0.0.1:{dev_cluster.serve_port}/", headers={"X-Request-ID": "probe-1"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read()) if resp.status == 200 else None

    return wait_until(call, timeout=120, interval=0.5, what="the probe deployment to answer through the proxy")


def test_every_documented_metric_is_exported_by_the_worker_node(dev_cluster: DevCluster, probed: dict) -> None:
    """The replica runs on the worker (the head has no CPUs): that node's endpoint carries the metrics."""
    expected = {series for spec in METRICS for series in spec.series}
    worker_port = dev_cluster.metrics_ports[1]

    def all_there():
        names = {name for name, _, _ in _samples(_scrape(worker_port))}
        missing = expected - names
        return (not missing) or None

    wait_until(all_there, timeout=90, interval=0.5, what=f"every ray_kubernaut_* series on :{worker_port}")
    samples = _samples(_scrape(worker_port))
    action = probed["action"]
    assert _value(samples, "ray_kubernaut_alerts_received_total", status="firing") == 3
    assert _value(samples, "ray_kubernaut_alerts_received_total", status="resolved") == 1
    assert _value(samples, "ray_kubernaut_alerts_rejected_total", reason="unauthorized") == 1
    assert _value(samples, "ray_kubernaut_alerts_deduplicated_total", kind="redelivery") == 2
    assert _value(samples, "ray_kubernaut_incidents", phase="new") == 2
    assert _value(samples, "ray_kubernaut_analyses_total", engine="llm", outcome="ok") == 1
    assert _value(samples, "ray_kubernaut_llm_tokens_total", model="probe-model", kind="prompt") == 100
    assert _value(samples, "ray_kubernaut_llm_tokens_total", model="probe-model", kind="completion") == 20
    assert _value(samples, "ray_kubernaut_llm_circuit_state", provider="vllm") == 2
    assert _value(samples, "ray_kubernaut_actions_total", action=action, outcome="succeeded", mode="dry-run",
                  cluster="spoke-b") == 1
    # The cluster of the incident or action (issue 16); none where the caller does not know it.
    assert _value(samples, "ray_kubernaut_incident_transitions_total", phase="new", cluster="spoke-b") == 1
    assert _value(samples, "ray_kubernaut_approval_decisions_total", decision="approved", cluster="spoke-b") == 1
    assert _value(samples, "ray_kubernaut_actions_total", action="unknown", cluster="none") == 1
    # An action name outside the catalog never becomes a label value of its own.
    assert _value(samples, "ray_kubernaut_actions_total", action="unknown", outcome="rejected", mode="live") == 1
    assert _value(samples, "ray_kubernaut_actions_total", action="not-a-catalog-action") is None
    assert _value(samples, "ray_kubernaut_approvals_pending") == 4
    assert _value(samples, "ray_kubernaut_notifications_total", outcome="failed") == 1
    assert _value(samples, "ray_kubernaut_assessment_score_count", action=action) == 1
    assert _value(samples, "ray_kubernaut_webhook_duration_seconds_bucket", outcome="accepted", le="0.05") == 1
    assert _value(samples, "ray_kubernaut_webhook_duration_seconds_bucket", outcome="accepted", le="0.025") == 0
    # Ray attributes each series to the process that recorded it.
    worker_ids = {lab.get("WorkerId") for n, lab, _ in samples if n == "ray_kubernaut_alerts_received_total"}
    assert len(worker_ids) == 1 and None not in worker_ids


def test_gauges_stay_exported_while_the_replica_lives(dev_cluster: DevCluster, probed: dict) -> None:
    """Ray drops a gauge not recorded for two export intervals; the helpers keep re-recording it."""
    worker_port = dev_cluster.metrics_ports[1]
    # 1 s export interval here: 6 consecutive scrapes over > 3 s would miss a gauge set only once.
    present = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline or len(present) < 6:
        samples = _samples(_scrape(worker_port))
        present.append(_value(samples, "ray_kubernaut_approvals_pending") == 4
                       and _value(samples, "ray_kubernaut_llm_circuit_state", provider="vllm") == 2)
        time.sleep(0.5)  # spacing between scrapes of a live endpoint, not synchronisation
    assert all(present), present


def test_head_node_exports_its_own_endpoint_without_app_metrics(dev_cluster: DevCluster, probed: dict) -> None:
    """Each node has its own endpoint; app metrics are where the replica runs, not copied to the head."""
    head = _samples(_scrape(dev_cluster.metrics_ports[0]))
    names = {name for name, _, _ in head}
    assert any(name.startswith("ray_") for name in names)
    assert "ray_kubernaut_alerts_received_total" not in names


def test_dashboard_and_alert_rules_only_name_metrics_that_exist(dev_cluster: DevCluster, probed: dict) -> None:
    """Every metric a Grafana panel or a PrometheusRule reads is on a real endpoint of the running cluster."""
    rules = yaml.safe_load((REPO_ROOT / "deploy" / "monitoring" / "prometheusrule.yaml").read_text())
    wanted: dict[str, str] = {}
    for title, expr in panel_queries(build_dashboard()):
        wanted.update(dict.fromkeys(metric_names(expr), f"panel {title!r}"))
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            wanted.update(dict.fromkeys(metric_names(rule["expr"]), f"rule {rule['alert']}"))
    assert set(SERVE_SERIES) <= set(wanted), "SERVE_SERIES lists a Serve metric that nothing uses"

    # Seen over several scrapes: Serve records some gauges (replica health) only at each health check,
    # and with this test's 1 s export interval they can be absent from a single scrape.
    seen: set[str] = set()

    def scraped() -> set[str] | None:
        for port in dev_cluster.metrics_ports:
            seen.update(name for name, _, _ in _samples(_scrape(port)))
        return seen if set(wanted) <= seen else None

    try:
        wait_until(scraped, timeout=90, interval=0.5, what="every dashboard/rule metric on the endpoints")
    except AssertionError:
        missing = {name: where for name, where in wanted.items() if name not in seen}
        pytest.fail(f"metrics used but not exported: {missing}")
    # The Serve panels filter on application="kubernaut": that label value really exists.
    samples = []
    for port in dev_cluster.metrics_ports:
        samples += _samples(_scrape(port))
    assert any(n == "ray_serve_num_http_requests_total" and lab.get("application") == APP_NAME
               for n, lab, _ in samples)


def test_json_logs_in_rays_log_directory_carry_request_and_incident_ids(dev_cluster: DevCluster, probed: dict) -> None:
    """Serve's replica log (what the dashboard shows) has one JSON object per line with our fields."""
    serve_logs = dev_cluster.temp_dir / "session_latest" / "logs" / "serve"

    def record() -> dict | None:
        for path in serve_logs.glob("replica_kubernaut_probe_*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if "probe recorded" not in line:
                    continue
                return json.loads(line)
        return None

    entry = wait_until(record, timeout=60, interval=0.5, what="the probe's log line in Serve's replica log")
    assert entry["message"] == "probe recorded 21 metrics"
    assert entry["incident_id"] == INCIDENT_ID
    assert entry["request_id"] == "probe-1" == probed["request_id"]  # X-Request-ID, through Serve's proxy
    assert entry["deployment"] == f"{APP_NAME}_probe" and entry["levelname"] == "INFO"
    assert entry["application"] == APP_NAME and entry["replica"]
