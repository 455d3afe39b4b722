"""The Serve application: ``import_path: kubernaut.app:build`` with ``args`` in serve_config.yaml."""

from __future__ import annotations

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


def _configured(deployment: Deployment, settings: DeploymentConfig) -> Deployment:
    scaling = settings.autoscaling
    return deployment.options(
        ray_actor_options={"num_cpus": settings.num_cpus},
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


def build_app(config: KubernautConfig) -> Application:
    d = config.deployments
    notifications = _configured(NotificationService, d["notifications"]).bind(config)
    executor = _configured(K8sExecutor, d["executor"]).bind(config)
    effectiveness = _configured(EffectivenessMonitor, d["effectiveness"]).bind(config)
    orchestrator = _configured(WorkflowOrchestrator, d["orchestrator"]).bind(config, executor, notifications,
                                                                            effectiveness)
    intelligence = _configured(IntelligenceService, d["intelligence"]).bind(config)
    analysis = _configured(AnalysisService, d["analysis"]).bind(config, orchestrator, intelligence)
    processor = _configured(AlertProcessor, d["processor"]).bind(config, analysis, notifications)
    context = _configured(ContextService, d["context"]).bind(config)
    return _configured(Gateway, d["gateway"]).bind(
        config, processor, analysis, executor, context, intelligence, effectiveness, orchestrator
    )


def build(args: dict[str, Any] | None = None) -> Application:
    """Serve app builder: ``args`` from serve_config.yaml, then the environment, then defaults."""
    return build_app(load_config(args))
