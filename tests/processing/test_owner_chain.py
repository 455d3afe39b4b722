"""Owner-chain fingerprinting against the real control plane: every pod of a workload lands on the
workload, whatever its name looks like; unreachable or missing objects fall back to labels."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from kubernetes import client

from kubernaut.processing.owners import OwnerResolver
from tests.support.polling import eventually
from tests.support.workloads import pod_template, pods_of

pytestmark = pytest.mark.k8s

LABELS = {"app": "web"}


@pytest.fixture
def workloads(kube_api_client: client.ApiClient, kube_namespace: str) -> dict[str, Any]:
    apps = client.AppsV1Api(kube_api_client)
    core = client.CoreV1Api(kube_api_client)
    apps.create_namespaced_deployment(kube_namespace, client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(replicas=2, selector=client.V1LabelSelector(match_labels=LABELS),
                                     template=pod_template(LABELS))))
    apps.create_namespaced_stateful_set(kube_namespace, client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name="db"),
        spec=client.V1StatefulSetSpec(replicas=1, service_name="db",
                                      selector=client.V1LabelSelector(match_labels={"app": "db"}),
                                      template=pod_template({"app": "db"}))))
    # A DaemonSet whose pod names look like a Deployment's to a label heuristic.
    apps.create_namespaced_daemon_set(kube_namespace, client.V1DaemonSet(
        metadata=client.V1ObjectMeta(name="agent"),
        spec=client.V1DaemonSetSpec(selector=client.V1LabelSelector(match_labels={"app": "agent"}),
                                    template=pod_template({"app": "agent"}))))
    core.create_namespaced_pod(kube_namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name="lonely-5f6d7c-abcde", labels={"app": "lonely"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="registry.local/app:1")])))
    core.patch_namespace(kube_namespace, {"metadata": {"labels": {"kubernaut.ai/environment": "production"}}})
    return {
        "web": pods_of(kube_api_client, kube_namespace, "app=web", 2),
        "db": pods_of(kube_api_client, kube_namespace, "app=db", 1),
        "agent": pods_of(kube_api_client, kube_namespace, "app=agent", 1),
    }


async def test_owner_chain_resolves_the_top_controller(kube_api_client: client.ApiClient, kube_namespace: str,
                                                      workloads: dict[str, Any]) -> None:
    resolver = OwnerResolver(kube_api_client, "test", ttl_s=30, timeout_s=5)
    results = {}
    for key in ("web", "db", "agent"):
        pod = workloads[key][0]
        results[key] = await resolver.resolve({"alertname": "X", "namespace": kube_namespace, "pod": pod})
    web = results["web"]
    assert (web.target.kind, web.target.name, web.source) == ("Deployment", "web", "kubernetes")
    assert [c.split("/")[0] for c in web.chain] == ["Pod", "ReplicaSet", "Deployment"]
    assert (results["db"].target.kind, results["db"].target.name) == ("StatefulSet", "db")
    assert (results["agent"].target.kind, results["agent"].target.name) == ("DaemonSet", "agent")

    other_pod = await resolver.resolve({"alertname": "Y", "namespace": kube_namespace, "pod": workloads["web"][1]})
    assert other_pod.fingerprint == web.fingerprint  # every pod of the workload, one incident

    lonely = await resolver.resolve({"alertname": "X", "namespace": kube_namespace, "pod": "lonely-5f6d7c-abcde"})
    assert (lonely.target.kind, lonely.source) == ("Pod", "kubernetes")  # the name heuristic would say Deployment

    gone = await resolver.resolve({"alertname": "X", "namespace": kube_namespace, "pod": "api-5f6d7c-zzzzz"})
    assert gone.source == "labels" and gone.target.kind == "Deployment" and "pod not found" in gone.chain[-1]

    assert (await resolver.namespace_labels(kube_namespace))["kubernaut.ai/environment"] == "production"


async def test_an_application_alert_naming_a_service_lands_on_its_workload(
        kube_api_client: client.ApiClient, kube_namespace: str, workloads: dict[str, Any]) -> None:
    client.CoreV1Api(kube_api_client).create_namespaced_service(kube_namespace, client.V1Service(
        metadata=client.V1ObjectMeta(name="web-http"),
        spec=client.V1ServiceSpec(selector=LABELS, ports=[client.V1ServicePort(port=80)])))
    resolver = OwnerResolver(kube_api_client, "test", ttl_s=30, timeout_s=5)
    error_rate = await resolver.resolve({"alertname": "HighErrorRate", "namespace": kube_namespace,
                                         "service": "web-http"})
    assert (error_rate.target.kind, error_rate.target.name, error_rate.source) == ("Deployment", "web", "kubernetes")
    assert error_rate.chain[0] == "Service/web-http"
    # The exporter's own `service` label (no such Service in the alert's namespace): the labels decide.
    quota = await resolver.resolve({"alertname": "KubeQuotaExceeded", "namespace": kube_namespace,
                                    "service": "kube-state-metrics"})
    assert (quota.target.kind, quota.source) == ("Namespace", "labels")


async def test_unreachable_api_falls_back_to_labels() -> None:
    config = client.Configuration()
    config.host = "https://127.0.0.1:1"
    resolver = OwnerResolver(client.ApiClient(config), "test", ttl_s=30, timeout_s=1)
    result = await resolver.resolve({"alertname": "X", "namespace": "shop", "pod": "api-5f6d7c-abcde"})
    assert result.source == "labels" and result.target.name == "api" and "owner lookup failed" in result.chain[-1]


async def test_the_running_app_fingerprints_through_the_api(api: httpx.AsyncClient, db: Any, kube_namespace: str,
                                                           workloads: dict[str, Any]) -> None:
    pod = workloads["agent"][0]
    body = {"version": "4", "status": "firing", "receiver": "k", "alerts": [{
        "labels": {"alertname": "KubePodNotReady", "namespace": kube_namespace, "pod": pod, "severity": "critical"},
        "startsAt": "2026-11-26T04:00:00Z", "fingerprint": uuid.uuid4().hex[:16]}]}
    response = await api.post("/api/v1/alerts", json=body)
    assert response.status_code == 200, response.text

    async def incident() -> Any:
        return await db.fetchrow("SELECT * FROM incidents WHERE target_namespace = $1", kube_namespace)

    row = await eventually(incident, timeout=30, what="incident")
    assert (row["target_kind"], row["target_name"], row["target_source"]) == ("DaemonSet", "agent", "kubernetes")
    # Environment from the namespace label, priority from environment x severity.
    assert (row["environment"], row["priority"]) == ("production", "P0")
