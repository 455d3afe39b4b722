"""Fail closed at start (issue 12): `serve run` on 0.0.0.0 without any authentication configured never serves.

The gateway replica reads the address Serve listens on and refuses to start (kubernaut.identity.chain), so the
app never answers a request; the reason is in serve run's output. The pure rules are in test_identity.py."""

from __future__ import annotations

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


def test_serve_run_on_all_interfaces_without_authentication_refuses_to_serve(tmp_path: Path) -> None:
    from kubernaut.storage.embedded import stop_embedded_server

    config = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    port = free_port()
    config["http_options"] = {"host": "0.0.0.0", "port": port}
    data_dir = tmp_path / "data"
    config["applications"][0]["args"].setdefault("storage", {})["data_dir"] = str(data_dir)
    config_file = tmp_path / "serve_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("KUBERNAUT_GATEWAY__")}
    env.update(RAY_ADDRESS="local", RAY_AUTH_MODE="disabled", KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    # HAProxy's stats and Prometheus ports off their defaults (as tests/system/test_serve_run.py): another HAProxy
    # on this machine holding 8404/9101 made HAProxy, and so this test, fail before the gateway could refuse.
    env.update(RAY_SERVE_HAPROXY_STATS_PORT=str(free_port()), RAY_SERVE_HAPROXY_METRICS_PORT=str(free_port()))
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(["bash", str(REPO / "scripts" / "run.sh"), str(config_file)], cwd=tmp_path,
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    answers: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and "refusing to serve on 0.0.0.0" not in log_path.read_text(
                errors="replace"):
            try:
                answers.add(httpx.post(f"http://127.0.0.1:{port}/api/v1/alerts", json={}, timeout=2).status_code)
            except httpx.HTTPError:
                pass
            time.sleep(1)
        output = log_path.read_text(errors="replace")
        assert "refusing to serve on 0.0.0.0 without authentication" in output, output[-6000:]
        assert "gateway.tokens" in output and "allow_anonymous" in output
        # Nothing was ever accepted or read without credentials.
        assert not {s for s in answers if s < 400}, answers
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        stop_embedded_server(data_dir)
