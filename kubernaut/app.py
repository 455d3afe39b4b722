"""The Serve application: ``import_path: kubernaut.app:build`` with ``args`` in serve_config.yaml."""

from __future__ import annotations

import copy
from typing import Any

from ray.serve import Application
from ray.serve.deployment import Deployment

from kubernaut.analysis.deployment import AnalysisService
from kubernaut.config.settings import DeploymentConfig, KubernautConfig, load_config
from kubernaut.context.deployment import ContextService
from kubernaut.effectiveness.deployment import EffectivenessMonitor
from kubernaut.execution.deployment import K8sExecutor
from kubernaut.gateway.deployment import Gateway
from kubernaut.intelligence.deployment import IntelligenceService
from kubernaut.notifications.deployment import NotificationService
from kubernaut.orchestration.deployment import WorkflowOrchestrator
from kubernaut.processing.deployment import AlertProcessor


class _ConfigFromReplicaEnv:
    """Stands for the configuration in a deployment's init args; becomes ``load_config(args)`` where it is used.

    It pickles as the serve args alone, and Serve unpickles init args in each replica, so the replica builds its
    own configuration from the args and *its* environment on first use: on KubeRay every worker group mounts
    only the secrets its deployments need (deploy/README.md), and the init args that Serve checkpoints in GCS
    (Redis) hold no secret. It must stay lazy: Serve's builder round-trips init args through pickle itself
    (ray.dag.py_obj_scanner), and resolving there would read the builder's environment instead.
    """

    def __init__(self, args: dict[str, Any]) -> None:
        object.__setattr__(self, "_kubernaut_args", copy.deepcopy(args))
        object.__setattr__(self, "_kubernaut_config", None)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return (_ConfigFromReplicaEnv, (self._kubernaut_args,))

    def _resolved(self) -> KubernautConfig:
        if self._kubernaut_config is None:
            object.__setattr__(self, "_kubernaut_config", load_config(self._kubernaut_args))
        return self._kubernaut_config

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocol probes (copy, pickle, inspect) must not resolve it
            raise AttributeError(name)
        return getattr(self._resolved(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._resolved(), name, value)


def _configured(deployment: Deployment, settings: DeploymentConfig) -> Deployment:
    scaling = settings.autoscaling
    actor_options: dict[str, Any] = {"num_cpus": settings.num_cpus}
    if settings.resources:  # KubeRay: only the worker group that offers them (deploy/src/serve-overrides.yaml.in)
        actor_options["resources"] = dict(settings.resources)
    return deployment.options(
        ray_actor_options=actor_options,
        max_ongoing_requests=settings.max_ongoing_requests,
        autoscaling_config={
            "min_replicas": scaling.min_replicas,
            "max_replicas": max(scaling.max_replicas, scaling.min_replicas),
            "target_ongoing_requests": scaling.target_ongoing_requests,
        },
        health_check_period_s=10,
        health_check_timeout_s=30,
        graceful_shutdown_timeout_s=20,
    )


def build_app(config: KubernautConfig, args: dict[str, Any] | None = None) -> Application:
    """The application; ``args`` (the serve args ``config`` was loaded from) are needed only by deployments
    with ``config_from_replica_env``, which get them instead of ``config``."""
    d = config.deployments

    def config_for(name: str) -> Any:
        if not d[name].config_from_replica_env:
            return config
        if args is None:  # fail closed: never fall back to shipping the builder's secrets
            raise ValueError(f"deployments.{name}.config_from_replica_env needs the serve args: "
                             "deploy with import_path kubernaut.app:build")
        return _ConfigFromReplicaEnv(args)

    def configured(deployment: Deployment, name: str) -> Deployment:
        return _configured(deployment, d[name])

    notifications = configured(NotificationService, "notifications").bind(config_for("notifications"))
    executor = configured(K8sExecutor, "executor").bind(config_for("executor"))
    effectiveness = configured(EffectivenessMonitor, "effectiveness").bind(config_for("effectiveness"))
    orchestrator = configured(WorkflowOrchestrator, "orchestrator").bind(config_for("orchestrator"), executor,
                                                                         notifications, effectiveness)
    intelligence = configured(IntelligenceService, "intelligence").bind(config_for("intelligence"))
    analysis = configured(AnalysisService, "analysis").bind(config_for("analysis"), orchestrator, intelligence)
    processor = configured(AlertProcessor, "processor").bind(config_for("processor"), analysis, notifications)
    context = configured(ContextService, "context").bind(config_for("context"))
    return configured(Gateway, "gateway").bind(
        config_for("gateway"), processor, analysis, executor, context, intelligence, effectiveness, orchestrator
    )


def build(args: dict[str, Any] | None = None) -> Application:
    """Serve app builder: ``args`` from serve_config.yaml, then the environment, then defaults."""
    return build_app(load_config(args), args or {})
