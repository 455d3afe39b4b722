"""The one configuration model."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from kubernaut.app import build_app
from kubernaut.config import ExecutionMode, load_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_safe_for_local_use(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "KUBERNAUT_EXECUTION__MODE"):
        monkeypatch.delenv(var, raising=False)
    config = load_config()
    assert config.dry_run and config.execution.mode is ExecutionMode.DRY_RUN
    assert config.storage.dsn is None and config.storage.data_dir.is_absolute()
    assert config.gateway.tokens == [] and not config.gateway.allow_anonymous  # loopback only (identity)


def test_environment_fills_what_args_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/k")
    monkeypatch.setenv("KUBERNAUT_GATEWAY__MAX_BODY_BYTES", "4096")
    config = load_config({"cluster_name": "prod-eu"})
    assert config.storage.dsn.get_secret_value() == "postgresql://u:p@db/k"
    assert config.gateway.max_body_bytes == 4096 and config.cluster_name == "prod-eu"
    assert "p@db" not in repr(config)  # secrets never printed


def test_args_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNAUT_EXECUTION__MODE", "live")
    assert load_config({"execution": {"mode": "dry-run"}}).dry_run


@pytest.mark.parametrize(("args", "field"), [
    ({"execution": {"mode": "yolo"}}, "execution.mode"),
    ({"deployments": {"gatewy": {}}}, "deployments"),
    ({"gateway": {"max_body_bytes": 1}}, "gateway.max_body_bytes"),
    ({"unknown_key": 1}, "unknown_key"),
])
def test_bad_config_names_the_field(args: dict, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_config(args)
    assert field in {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}


def test_serve_config_yaml_builds_the_app_with_every_service() -> None:
    document = yaml.safe_load((REPO / "serve_config.yaml").read_text())
    (app_spec,) = document["applications"]
    assert app_spec["import_path"] == "kubernaut.app:build"
    config = load_config(app_spec["args"])
    assert config.dry_run
    app = build_app(config)
    assert app is not None
    total_cpus = sum(d.num_cpus * d.autoscaling.min_replicas for d in config.deployments.values())
    assert total_cpus <= 1.0, "the whole app must fit on a 2-core laptop with room for Ray itself"
    assert set(config.deployments) == {"gateway", "processor", "analysis", "context", "orchestrator", "executor",
                                       "effectiveness", "intelligence", "notifications"}
