"""`kubernaut run` starts its local Ray without the dashboard's module processes unless asked for them
(kubernaut/local_ray.py); the running app is checked in tests/system/test_serve_run.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from kubernaut import cli


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    for name, value in {"RAY_SERVE_ENABLE_HA_PROXY": "0", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
                        "RAY_AUTH_MODE": "disabled", "RAY_SERVE_LOG_TO_STDERR": "1"}.items():
        monkeypatch.setenv(name, value)  # restored afterwards; cmd_run only sets what is unset
    calls: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append([path, *argv[1:]]))
    return calls


def test_run_serves_through_local_ray_and_the_flag_keeps_rays_dashboard(tmp_path: Path,
                                                                        executed: list[list[str]]) -> None:
    config = tmp_path / "serve_config.yaml"
    config.write_text("applications: []\n")
    assert cli.main(["run", str(config)]) == 0
    assert executed[-1] == [sys.executable, "-m", "kubernaut.local_ray", "run", str(config)]
    assert cli.main(["run", "--ray-dashboard", str(config)]) == 0
    assert executed[-1] == [str(Path(sys.executable).with_name("serve")), "run", str(config)]


def test_local_ray_starts_ray_without_the_dashboard_then_runs_serves_own_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray._private import parameter
    from ray.serve import scripts

    calls: list[tuple[str, object]] = []
    original = parameter.RayParams
    # What ray.init() builds to start a head: here it is given no_monitor (no autoscaler monitor process).
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(
        ("init", {**kwargs, "no_monitor": parameter.RayParams().no_monitor})))
    monkeypatch.setattr(scripts.cli, "main", lambda args, prog_name: calls.append(("serve", (prog_name, args))))
    from kubernaut import local_ray

    assert local_ray.main(["run", "serve_config.yaml"]) == 0
    assert calls == [("init", {"namespace": "serve", "include_dashboard": False, "no_monitor": True}),
                     ("serve", ("serve", ["run", "serve_config.yaml"]))]
    assert parameter.RayParams is original and original().no_monitor is False
