"""A real AlertManager (Debian package) delivering webhooks to the running Kubernaut.

``alertmanager_for(url, token)`` starts one instance per test with a webhook receiver pointing at
``url`` and the bearer token in ``http_config.authorization.credentials_file``; alerts are pushed
through AlertManager's own API (``POST /api/v2/alerts``), exactly as Prometheus does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.sinks import free_port


@dataclass
class AlertManager:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def push(self, labels: dict[str, str], annotations: dict[str, str] | None = None, resolved: bool = False,
             starts_at: datetime | None = None) -> None:
        now = datetime.now(timezone.utc)
        start = starts_at or now - timedelta(minutes=5)
        alert: dict[str, Any] = {"labels": labels, "annotations": annotations or {},
                                 "startsAt": start.isoformat().replace("+00:00", "Z")}
        if resolved:
            alert["endsAt"] = (now - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
        request = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps([alert]).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200


def _wait_ready(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"AlertManager at {url} not ready after {timeout}s")


@pytest.fixture
def alertmanager_for(tmp_path: Path) -> Iterator[Callable[[str, str | None], AlertManager]]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("AlertManager is not installed (scripts/test-prepare.d/alertmanager.sh installs it)")
    started: list[AlertManager] = []

    def start(webhook_url: str, token: str | None) -> AlertManager:
        port = free_port()
        webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
        if token:
            token_file = tmp_path / "token"
            token_file.write_text(token)
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": str(token_file)}}
        config = {
            "route": {"receiver": "kubernaut", "group_by": ["alertname", "namespace"], "group_wait": "1s",
                      "group_interval": "2s", "repeat_interval": "1h"},
            "receivers": [{"name": "kubernaut", "webhook_configs": [webhook]}],
        }
        config_file = tmp_path / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        log = tmp_path / "alertmanager.log"
        process = subprocess.Popen(
            [binary, f"--config.file={config_file}", f"--storage.path={tmp_path / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=log.open("w"), stderr=subprocess.STDOUT,
        )
        manager = AlertManager(f"http://127.0.0.1:{port}", process, log)
        started.append(manager)
        _wait_ready(manager.url, 15)
        return manager

    yield start
    for manager in started:
        manager.process.terminate()
        try:
            manager.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            manager.process.kill()
