"""The investigation's tools against the real control plane (kube-apiserver, controller-manager; the simulated kubelet
serves no logs): what the model gets to read is redacted, bounded and confined to the incident's namespace, and
Secrets are never read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client

from kubernaut.analysis.engine import build_situation
from kubernaut.analysis.tools.builtin import ToolScope, default_registry
from kubernaut.cluster.api import ClusterAPI
from kubernaut.cluster.redaction import redactor
from kubernaut.context.models import ResourceContext
from kubernaut.models.resource import ResourceRef
from tests.plugins.kube_testenv import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.k8s]


def _deployment(image: str) -> client.V1Deployment:
    labels = {"app": "web"}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(
                    name="web", image=image, args=["--db-password", "hunter2"],
                    env=[client.V1EnvVar(name="DB_PASSWORD", value="hunter2"),
                         client.V1EnvVar(name="LOG_LEVEL", value="debug")])]))))


def _setup(api: Any, ns: str) -> None:
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="web-config"),
                                                             data={"mode": "fast"}))
    core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="db-creds"),
                                                      string_data={"password": "s3cr3t-value"}))
    apps.create_namespaced_deployment(ns, _deployment("registry.local/web:1"))
    def revision() -> str | None:
        return (apps.read_namespaced_deployment("web", ns).metadata.annotations or {}).get(
            "deployment.kubernetes.io/revision")

    wait_until(lambda: revision() == "1", timeout=60, what="revision 1")
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "registry.local/web:2"}]}}}})
    wait_until(lambda: len(client.AppsV1Api(api).list_namespaced_replica_set(ns).items) >= 2, timeout=60,
               what="a second ReplicaSet")


async def test_the_tools_read_redacted_bounded_and_only_this_namespace(kube_api_client: Any,
                                                                        kube_namespace: str) -> None:
    ns = kube_namespace
    await asyncio.to_thread(_setup, kube_api_client, ns)
    target = ResourceRef(kind="Deployment", name="web", namespace=ns)
    scope = ToolScope(situation=build_situation([], target, ResourceContext(target=target)),
                      cluster=ClusterAPI(kube_api_client, 5.0, read_retries=0), redactor=redactor())
    registry = default_registry()

    async def call(tool: str, **arguments: Any) -> Any:
        return await registry.call(tool, json.dumps(arguments), scope, timeout_s=8.0, output_chars=20_000)

    got = await call("get_resource", kind="Deployment", name="web")
    assert got.record.outcome == "ok", got.text
    assert "hunter2" not in got.text and "managedFields" not in got.text and "registry.local/web:2" in got.text
    assert '"LOG_LEVEL"' in got.text and "--db-password" in got.text  # names stay, values go

    history = await call("rollout_history", name="web")
    assert history.record.outcome == "ok", history.text
    body = json.loads(history.text)
    assert [r["revision"] for r in body["revisions"]] == [2, 1]
    assert body["diff_last_two"]["images"] == {"before": ["registry.local/web:1"], "after": ["registry.local/web:2"]}
    assert "hunter2" not in history.text

    changes = await call("recent_changes", minutes=30)
    assert changes.record.outcome == "ok", changes.text
    body = json.loads(changes.text)
    assert "web-config" in [c["name"] for c in body["ConfigMap"]] and body["Deployment"][0]["name"] == "web"
    assert "db-creds" not in changes.text and "s3cr3t" not in changes.text

    events = await call("list_events", limit=5)
    assert events.record.outcome == "ok" and len(json.loads(events.text)) <= 5

    secret = await call("get_resource", kind="Secret", name="db-creds")
    assert secret.refused and "s3cr3t" not in secret.text and secret.record.outcome == "refused"
    foreign = await call("get_resource", kind="ConfigMap", name="coredns", namespace="kube-system")
    assert foreign.refused and "outside this incident's namespace" in foreign.text
    missing = await call("get_resource", kind="ConfigMap", name="nope")
    assert missing.record.outcome == "error" and "not found" in missing.text

    capped = await registry.call("get_resource", json.dumps({"kind": "Deployment", "name": "web"}), scope,
                                 timeout_s=8.0, output_chars=300)
    assert capped.record.truncated and capped.record.size > 300 and len(capped.text) < 320

    # The simulated kubelet serves no logs: the tool fails cleanly, within its limit, and says so.
    pod = (await asyncio.to_thread(client.CoreV1Api(kube_api_client).list_namespaced_pod, ns)).items[0].metadata.name
    logs = await call("tail_logs", pod=pod, lines=20)
    assert logs.record.outcome in ("error", "timeout") and logs.record.latency_ms < 9000, logs.text
