"""The README's run command on a fresh data directory: `serve run serve_config.yaml` (via scripts/run.sh)
brings the system up, and a captured AlertManager payload becomes an incident with an analysis and a
dry-run action within seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.sinks import free_port

pytestmark = [pytest.mark.integration, pytest.mark.ray, pytest.mark.postgres]  # `serve run` starts both

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = REPO / "tests" / "data" / "alertmanager" / "captured_am0.25_firing_prometheus_rule.json"


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"serve run exited with {process.returncode} before {what}")
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, AssertionError, KeyError, TypeError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def test_serve_run_brings_up_the_loop(tmp_path: Path) -> None:
    from kubernaut.storage.embedded import stop_embedded_server

    config = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"] = {"host": "127.0.0.1", "port": port}
    data_dir = tmp_path / "data"
    config["applications"][0]["args"]["storage"]["data_dir"] = str(data_dir)
    config_file = tmp_path / "serve_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    # RAY_ADDRESS=local: a Ray of its own, as on a fresh laptop. Without an address `serve run` joins the cluster
    # named in /tmp/ray/ray_current_cluster (the last `ray start` on the machine), even a dead one.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_ADDRESS="local", RAY_AUTH_MODE="disabled", KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(["bash", str(REPO / "scripts" / "run.sh"), str(config_file)], cwd=tmp_path,
                               env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _run_loop(base, process)
    except AssertionError as error:
        # What serve run printed is the only account of why it did not come up (CI shows no files).
        log.flush()
        tail = (tmp_path / "serve.log").read_text(errors="replace")[-6000:]
        raise AssertionError(f"{error}\n--- serve run output (tail) ---\n{tail}") from None
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.close()
        stop_embedded_server(data_dir)


def _run_loop(base: str, process: subprocess.Popen) -> None:
    wait_for(lambda: httpx.get(f"{base}/ready", timeout=2).status_code == 200, 180, "serve run ready", process)
    response = httpx.post(f"{base}/api/v1/alerts", json=json.loads(PAYLOAD.read_text()), timeout=10)
    assert response.status_code == 200, response.text
    (incident_id,) = response.json()["incident_ids"]

    def incident_done():
        view = httpx.get(f"{base}/api/v1/incidents", timeout=5).json()["items"]
        item = next(i for i in view if i["id"] == incident_id)
        return item if item["phase"] in ("dry_run_completed", "human_review") else None

    started = time.monotonic()
    item = wait_for(incident_done, 30, "incident with analysis and dry-run action")
    assert time.monotonic() - started < 15, "the loop should complete within seconds"
    # Without cluster evidence the crashloop rule's restart is recommended to a human, not proposed.
    assert item["analysis"]["action"] == "notify_only"
    detail = httpx.get(f"{base}/api/v1/incidents/{incident_id}", timeout=5).json()
    assert detail["analysis"]["alternatives"][0]["action"] == "restart_pod"
    assert detail["actions"] and all(a["status"] == "dry_run" for a in detail["actions"])
