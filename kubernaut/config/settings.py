"""The one configuration model: filled from ``serve_config.yaml`` args, then the environment.

Precedence (highest first): explicit args from ``serve_config.yaml`` → environment variables
(``KUBERNAUT_*``, nested with ``__``, plus the conventional ``DATABASE_URL``) → safe local defaults.
Secrets (DSN, tokens, API keys) are meant to come from the environment so they never sit in YAML.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ExecutionMode(str, Enum):
    DRY_RUN = "dry-run"
    LIVE = "live"


class AutoscalingConfig(BaseModel):
    min_replicas: int = Field(default=1, ge=0, le=100)
    max_replicas: int = Field(default=2, ge=1, le=100)
    target_ongoing_requests: float = Field(default=20, gt=0)


class DeploymentConfig(BaseModel):
    """Ray Serve knobs of one service; fractional CPUs so the whole app fits on a 2-core laptop."""

    num_cpus: float = Field(default=0.1, ge=0, le=64)
    max_ongoing_requests: int = Field(default=100, ge=1, le=10_000)
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)


def _default_deployments() -> dict[str, DeploymentConfig]:
    return {
        "gateway": DeploymentConfig(num_cpus=0.2, max_ongoing_requests=500,
                                    autoscaling=AutoscalingConfig(max_replicas=4, target_ongoing_requests=100)),
        "processor": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=200),
        "analysis": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=50),
        "context": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=100),
        "orchestrator": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=100),
        "executor": DeploymentConfig(num_cpus=0.1, max_ongoing_requests=50),
        "effectiveness": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=50),
        "intelligence": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=50),
        "notifications": DeploymentConfig(num_cpus=0.05, max_ongoing_requests=100),
    }


class StorageConfig(BaseModel):
    # None → embedded PostgreSQL+pgvector in ``data_dir`` (same code path as an external server).
    dsn: SecretStr | None = None
    data_dir: Path = Field(default_factory=lambda: Path.home() / ".kubernaut" / "data")
    pool_min_size: int = Field(default=1, ge=0, le=50)
    pool_max_size: int = Field(default=5, ge=1, le=200)
    command_timeout_s: float = Field(default=10.0, gt=0)


class GatewayConfig(BaseModel):
    # Several tokens may be valid at once so they can be rotated without dropping alerts.
    auth_tokens: list[SecretStr] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    max_alerts_per_request: int = Field(default=1000, ge=1, le=100_000)
    # How long the gateway waits for the processor to assign incidents before answering anyway
    # (the alerts are already committed; the processor's sweeper finishes the job).
    process_wait_s: float = Field(default=3.0, ge=0, le=30)


class AnalysisConfig(BaseModel):
    rules_file: Path | None = None  # None → the packaged rules
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None


class KubernetesConfig(BaseModel):
    kubeconfig: Path | None = None  # None → in-cluster, else $KUBECONFIG / ~/.kube/config
    context: str | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)


class ExecutionConfig(BaseModel):
    # Live execution must be asked for explicitly.
    mode: ExecutionMode = ExecutionMode.DRY_RUN
    managed_namespaces: list[str] = Field(default_factory=list)


class NotificationsConfig(BaseModel):
    # apprise URLs (slack://, msteams://, mailto://, json://, pagerduty:// ...); empty → log only.
    urls: list[SecretStr] = Field(default_factory=list)
    timeout_s: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=50)


class WorkConfig(BaseModel):
    """Durable work queue: how deployments claim work from the database."""

    poll_interval_s: float = Field(default=2.0, gt=0, le=60)
    lease_s: float = Field(default=60.0, ge=1, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)
    batch_size: int = Field(default=20, ge=1, le=1000)


class KubernautConfig(BaseSettings):
    """Everything the application needs; one instance is built by ``kubernaut.app:build``."""

    model_config = SettingsConfigDict(
        env_prefix="KUBERNAUT_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    cluster_name: str = Field(default="local", max_length=63)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    work: WorkConfig = Field(default_factory=WorkConfig)
    deployments: dict[str, DeploymentConfig] = Field(default_factory=_default_deployments)
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("deployments")
    @classmethod
    def _known_deployments(cls, value: dict[str, DeploymentConfig]) -> dict[str, DeploymentConfig]:
        defaults = _default_deployments()
        unknown = sorted(set(value) - set(defaults))
        if unknown:
            raise ValueError(f"unknown deployment(s) {unknown}; known: {sorted(defaults)}")
        return {**defaults, **value}

    @property
    def dry_run(self) -> bool:
        return self.execution.mode is ExecutionMode.DRY_RUN


def load_config(args: dict[str, Any] | None = None) -> KubernautConfig:
    """Build the config from serve_config args and the environment, resolving local paths once.

    Paths are made absolute here, in the process that reads the YAML, because Ray replicas run
    with another working directory.
    """
    config = KubernautConfig(**(args or {}))
    if config.storage.dsn is None and os.environ.get("DATABASE_URL"):
        config.storage.dsn = SecretStr(os.environ["DATABASE_URL"])
    config.storage.data_dir = config.storage.data_dir.expanduser().resolve()
    if config.analysis.rules_file is not None:
        config.analysis.rules_file = config.analysis.rules_file.expanduser().resolve()
    if config.kubernetes.kubeconfig is not None:
        config.kubernetes.kubeconfig = config.kubernetes.kubeconfig.expanduser().resolve()
    return config
