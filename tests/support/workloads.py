"""Workloads created in the test control plane for the tests that need a failing or a labelled one."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.plugins.kube_testenv import wait_until


def crashlooping_deployment(api_client: Any, namespace: str, name: str = "web") -> str:
    """A real Deployment whose pods crash-loop (simulated kubelet); returns one of its pod names."""
    labels = {"app": name}
    client.AppsV1Api(api_client).create_namespaced_deployment(namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels,
                                             annotations={"sim.kubernaut.io/state": "CrashLoopBackOff"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name=name, image="registry.local/web:2")])))))
    core = client.CoreV1Api(api_client)

    def crashing_pod() -> str | None:
        for pod in core.list_namespaced_pod(namespace, label_selector=f"app={name}").items:
            statuses = pod.status.container_statuses or []
            if any(s.state.waiting and s.state.waiting.reason == "CrashLoopBackOff" for s in statuses):
                return pod.metadata.name
        return None

    return wait_until(crashing_pod, timeout=60, what="a crash-looping pod")


def pod_template(labels: dict[str, str]) -> client.V1PodTemplateSpec:
    return client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="registry.local/app:1")]))


def pods_of(api: client.ApiClient, namespace: str, selector: str, count: int) -> list[str]:
    core = client.CoreV1Api(api)

    def ready() -> list[str] | None:
        names = [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector=selector).items]
        return names if len(names) >= count else None

    return wait_until(ready, timeout=60, what=f"{count} pods for {selector}")
