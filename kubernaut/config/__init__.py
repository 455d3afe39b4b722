"""Configuration: one pydantic model, filled from serve_config.yaml args and the environment."""

from kubernaut.config.settings import (
    DeploymentConfig,
    ExecutionMode,
    KubernautConfig,
    load_config,
)

__all__ = ["DeploymentConfig", "ExecutionMode", "KubernautConfig", "load_config"]
