"""Kubernetes credentials: in-cluster first, then kubeconfig (``KUBECONFIG`` / ``~/.kube/config``).

The ApiClient made here is used through ``kubernaut.cluster.api.ClusterAPI`` (threads, versions, errors).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from kubernaut.config.settings import KubernetesConfig

logger = logging.getLogger(__name__)


@dataclass
class ClusterConnection:
    api_client: client.ApiClient | None
    source: str  # "in-cluster", "kubeconfig:<path>" or "none"
    reason: str | None = None

    @property
    def available(self) -> bool:
        return self.api_client is not None


def connect(settings: KubernetesConfig) -> ClusterConnection:
    """Never raises: without credentials the system runs (dry-run only) and says why."""
    if settings.kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            cfg = client.Configuration()
            config.load_incluster_config(client_configuration=cfg)
            return ClusterConnection(client.ApiClient(cfg), "in-cluster")
        except ConfigException as exc:
            logger.warning("in-cluster config failed: %s", exc)
    path = settings.kubeconfig or Path(os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0])
    path = path.expanduser()
    if not path.exists():
        return ClusterConnection(None, "none", f"no in-cluster credentials and no kubeconfig at {path}")
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=str(path), context=settings.context, client_configuration=cfg)
    except (ConfigException, OSError, ValueError) as exc:
        return ClusterConnection(None, "none", f"kubeconfig {path} unusable: {exc}")
    return ClusterConnection(client.ApiClient(cfg), f"kubeconfig:{path}")
