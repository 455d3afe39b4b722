"""The diagnosis on the real control plane: what a credential may not read is unknown, never guessed.

The same OOMKilled Deployment is analysed with the admin credential (the cluster shows the OOM: the
memory increase is proposed and names its finding) and with a credential that RBAC forbids everything
(the analysis says what it could not see and proposes nothing that changes the cluster).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from kubernetes import client

from kubernaut.analysis.engine import Analyzer
from kubernaut.analysis.rules import load_rules
from kubernaut.cluster.client import connect
from kubernaut.config import load_config
from kubernaut.context.provider import ContextProvider
from kubernaut.execution.catalog import CATALOG
from kubernaut.models.resource import ResourceRef
from kubernaut.models.signal import Signal
from tests.plugins.kube_testenv import KubeTestEnv, wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.integration]


def analyzer(kubeconfig: str) -> Analyzer:
    config = load_config({"kubernetes": {"kubeconfig": kubeconfig}, "analysis": {"context_time_budget_s": 10}})
    cluster = connect(config.kubernetes)
    return Analyzer(config.analysis, load_rules(), ContextProvider(config, cluster, None), None)


def oom_deployment(name: str) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels, "annotations": {"sim.kubernaut.io/state": "OOMKilled"}},
                "spec": {"containers": [{"name": "app", "image": "registry.local/app:1",
                                         "resources": {"limits": {"memory": "64Mi"}}}]}}}}


async def test_forbidden_reads_are_unknown_and_unlock_nothing(kube_testenv: KubeTestEnv,
                                                             kube_api_client: client.ApiClient,
                                                             kube_namespace: str) -> None:
    client.AppsV1Api(kube_api_client).create_namespaced_deployment(kube_namespace, oom_deployment("cart"))
    core = client.CoreV1Api(kube_api_client)

    def oom_pod() -> str | None:
        for pod in core.list_namespaced_pod(kube_namespace, label_selector="app=cart").items:
            for cs in pod.status.container_statuses or []:
                if cs.last_state and cs.last_state.terminated and cs.last_state.terminated.reason == "OOMKilled":
                    return pod.metadata.name
        return None

    pod = wait_until(oom_pod, timeout=60, what="an OOMKilled pod")
    labels = {"alertname": "KubePodCrashLooping", "namespace": kube_namespace, "pod": pod, "container": "app"}
    signal = Signal(alert_id=1, alertname="KubePodCrashLooping", status="firing", labels=labels,
                    am_fingerprint="f", namespace=kube_namespace, starts_at=datetime.now(timezone.utc))
    target = ResourceRef(kind="Deployment", name="cart", namespace=kube_namespace)

    seen = await analyzer(kube_testenv.admin_kubeconfig).analyze([signal], target)
    assert seen.action == "increase_memory_limits" and seen.justified_by == "container.oom_killed", seen.reasoning
    assert "64Mi" in seen.root_cause

    blind = await analyzer(kube_testenv.rightless_kubeconfig).analyze([signal], target)
    kinds = {f.kind.value for f in blind.findings}
    assert "context.unknown" in kinds, kinds
    assert "container.oom_killed" not in kinds  # nothing observed, nothing claimed
    assert not CATALOG[blind.action].mutates, (blind.action, blind.reasoning)
