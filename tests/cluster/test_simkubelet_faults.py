"""Kubelet-side faults the simulated kubelet reproduces (evals/README.md, "What the simulated kubelet can show").

Pod behaviours run on the shared test environment (its simulated kubelet), one namespace per test.
Node states are set on private nodes served by a private simulated kubelet, never on the shared ones.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.plugins.kube_testenv import REPO_ROOT, KubeTestEnv, wait_until

pytestmark = pytest.mark.k8s

SIM = "sim.kubernaut.io/"
DEFAULT_PROBE_MESSAGE = "Readiness probe failed: HTTP probe failed with statuscode: 503"


# -- helpers -----------------------------------------------------------------------------------
def make_pod(
    core: client.CoreV1Api,
    ns: str,
    name: str,
    annotations: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    **container: Any,
) -> None:
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "nginx:1.25", **container}],
    }
    if volumes:
        spec["volumes"] = volumes
    core.create_namespaced_pod(
        ns,
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}}, "spec": spec},
    )


def pod_json(core: client.CoreV1Api, ns: str, name: str) -> dict[str, Any]:
    return core.api_client.sanitize_for_serialization(core.read_namespaced_pod(name, ns))


def container(pod: dict[str, Any], name: str = "app") -> dict[str, Any]:
    return next((c for c in (pod.get("status") or {}).get("containerStatuses") or [] if c["name"] == name), {})


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def waiting(pod: dict[str, Any]) -> dict[str, Any]:
    return (container(pod).get("state") or {}).get("waiting") or {}


def is_ready(pod: dict[str, Any]) -> bool:
    return pod["status"].get("phase") == "Running" and condition(pod, "Ready").get("status") == "True"


def events(core: client.CoreV1Api, ns: str, name: str, reason: str) -> list[client.CoreV1Event]:
    items = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    return [e for e in items if e.reason == reason]


def wait_pod(core: client.CoreV1Api, ns: str, name: str, check, what: str, timeout: float = 30) -> dict[str, Any]:
    def probe():
        pod = pod_json(core, ns, name)
        return pod if check(pod) else None

    return wait_until(probe, timeout=timeout, what=f"{what} ({ns}/{name})")


def wait_event(core: client.CoreV1Api, ns: str, name: str, reason: str, message: str, timeout: float = 30):
    def probe():
        found = [e for e in events(core, ns, name, reason) if e.message == message]
        return found[0] if found else None

    ev = wait_until(probe, timeout=timeout, what=f"{reason} event {message!r} for {ns}/{name}")
    assert ev.type == "Warning" and ev.source.component == "kubelet"
    return ev


# -- pod annotations ---------------------------------------------------------------------------
def test_crash_exit_code_and_message(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, ns = client.CoreV1Api(kube_api_client), kube_namespace
    log_tail = "x" * 5000 + "\nexec /app/server: no such file or directory"
    make_pod(
        core,
        ns,
        "crash127",
        {SIM + "state": "CrashLoopBackOff", SIM + "exit-code": "127", SIM + "message": log_tail},
        terminationMessagePolicy="FallbackToLogsOnError",
    )
    make_pod(core, ns, "oom", {SIM + "state": "OOMKilled", SIM + "exit-code": "3"})
    make_pod(core, ns, "crash-default", {SIM + "state": "CrashLoopBackOff"})

    def last(pod: dict[str, Any]) -> dict[str, Any]:
        return (container(pod).get("lastState") or {}).get("terminated") or {}

    def crashed(pod: dict[str, Any]) -> bool:
        return waiting(pod).get("reason") == "CrashLoopBackOff" and bool(last(pod))

    t = last(wait_pod(core, ns, "crash127", crashed, "crash with exit 127"))
    assert t["exitCode"] == 127 and t["reason"] == "Error"
    assert len(t["message"].encode()) == 4096  # the kubelet's limit; the tail is kept
    assert t["message"].endswith("exec /app/server: no such file or directory")
    t = last(wait_pod(core, ns, "oom", crashed, "OOMKilled crash"))
    assert (t["exitCode"], t["reason"]) == (137, "OOMKilled") and not t.get("message")
    t = last(wait_pod(core, ns, "crash-default", crashed, "default crash"))
    assert (t["exitCode"], t["reason"]) == (1, "Error")


def test_notready_probe_message_events(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, ns = client.CoreV1Api(kube_api_client), kube_namespace
    text = "Readiness probe failed: HTTP probe failed with statuscode: 500"
    exec_probe = {"exec": {"command": ["true"]}, "periodSeconds": 1}
    make_pod(core, ns, "custom", {SIM + "state": "NotReady", SIM + "probe-message": text}, readinessProbe=exec_probe)
    make_pod(core, ns, "default", {SIM + "state": "NotReady"})

    pod = wait_pod(core, ns, "custom", lambda p: "running" in (container(p).get("state") or {}), "running")
    assert not container(pod)["ready"] and condition(pod, "Ready")["status"] == "False"
    ev = wait_event(core, ns, "custom", "Unhealthy", text)
    assert ev.involved_object.field_path == "spec.containers{app}"
    # The kubelet keeps probing: one Event whose count grows.
    wait_until(
        lambda: any((e.count or 0) >= 2 for e in events(core, ns, "custom", "Unhealthy")),
        timeout=20,
        what="Unhealthy count to grow",
    )
    assert len(events(core, ns, "custom", "Unhealthy")) == 1
    wait_event(core, ns, "default", "Unhealthy", DEFAULT_PROBE_MESSAGE)

    # Healed: no more Unhealthy events.
    core.patch_namespaced_pod("custom", ns, {"metadata": {"annotations": {SIM + "state": None}}})
    wait_pod(core, ns, "custom", is_ready, "healed")


# -- kubelet behaviour without annotations -----------------------------------------------------
def test_env_from_missing_configmap_and_secret(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, ns = client.CoreV1Api(kube_api_client), kube_namespace
    make_pod(
        core,
        ns,
        "cmenv",
        env=[{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}}],
    )
    make_pod(core, ns, "secenv", envFrom=[{"secretRef": {"name": "creds"}}])
    make_pod(
        core,
        ns,
        "optional",
        envFrom=[{"configMapRef": {"name": "nothing", "optional": True}}],
        env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nothing", "key": "x", "optional": True}}}],
    )

    def config_error(message: str):
        return lambda p: waiting(p) == {"reason": "CreateContainerConfigError", "message": message}

    pod = wait_pod(core, ns, "cmenv", config_error('configmap "settings" not found'), "CreateContainerConfigError")
    assert pod["status"]["phase"] == "Pending" and not container(pod)["ready"]
    ev = wait_event(core, ns, "cmenv", "Failed", 'Error: configmap "settings" not found')
    assert ev.involved_object.field_path == "spec.containers{app}"
    wait_pod(core, ns, "secenv", config_error('secret "creds" not found'), "CreateContainerConfigError")
    wait_event(core, ns, "secenv", "Failed", 'Error: secret "creds" not found')
    wait_pod(core, ns, "optional", is_ready, "optional refs do not block")

    # The ConfigMap appears without the key, then with it.
    core.create_namespaced_config_map(ns, {"metadata": {"name": "settings"}, "data": {"other": "1"}})
    wait_pod(core, ns, "cmenv", config_error(f"couldn't find key level in ConfigMap {ns}/settings"), "missing key")
    wait_event(core, ns, "cmenv", "Failed", f"Error: couldn't find key level in ConfigMap {ns}/settings")
    core.patch_namespaced_config_map("settings", ns, {"data": {"level": "debug"}})
    wait_pod(core, ns, "cmenv", is_ready, "started once the key exists")
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds"}, "stringData": {"user": "u"}})
    wait_pod(core, ns, "secenv", is_ready, "started once the secret exists")
    assert events(core, ns, "secenv", "Started")


def test_missing_volume_source_blocks_mount(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, ns = client.CoreV1Api(kube_api_client), kube_namespace
    make_pod(
        core,
        ns,
        "mounter",
        volumes=[
            {"name": "conf", "configMap": {"name": "app-config"}},
            {"name": "maybe", "secret": {"secretName": "nothing", "optional": True}},
        ],
        volumeMounts=[{"name": "conf", "mountPath": "/etc/app"}, {"name": "maybe", "mountPath": "/etc/maybe"}],
    )
    make_pod(
        core,
        ns,
        "secmount",
        volumes=[{"name": "tls", "secret": {"secretName": "tls-cert"}}],
        volumeMounts=[{"name": "tls", "mountPath": "/tls"}],
    )

    def creating(p: dict[str, Any]) -> bool:
        return waiting(p) == {"reason": "ContainerCreating"}

    pod = wait_pod(core, ns, "mounter", creating, "ContainerCreating")
    assert pod["status"]["phase"] == "Pending" and not pod["status"].get("podIP")
    assert condition(pod, "Ready")["status"] == "False"
    mount_failed = "MountVolume.SetUp failed for volume "
    wait_event(core, ns, "mounter", "FailedMount", mount_failed + '"conf" : configmap "app-config" not found')
    wait_pod(core, ns, "secmount", creating, "ContainerCreating")
    wait_event(core, ns, "secmount", "FailedMount", mount_failed + '"tls" : secret "tls-cert" not found')

    core.create_namespaced_config_map(ns, {"metadata": {"name": "app-config"}, "data": {"app.yaml": "a: 1"}})
    pod = wait_pod(core, ns, "mounter", is_ready, "started once the ConfigMap exists")
    assert pod["status"]["podIP"]
    # The kubelet reports the status first and its events after: wait for the event, do not race it.
    wait_until(lambda: events(core, ns, "mounter", "Started"), timeout=30, what=f"Started event ({ns}/mounter)")
    assert creating(pod_json(core, ns, "secmount"))


def test_readiness_probe_on_undeclared_port(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, ns = client.CoreV1Api(kube_api_client), kube_namespace
    ports = [{"containerPort": 80, "name": "http"}]
    make_pod(core, ns, "wrong-http", ports=ports, readinessProbe={"httpGet": {"path": "/healthz", "port": 8080}})
    make_pod(core, ns, "wrong-tcp", ports=ports, readinessProbe={"tcpSocket": {"port": 9090}})
    make_pod(core, ns, "right-named", ports=ports, readinessProbe={"httpGet": {"path": "/", "port": "http"}})
    make_pod(core, ns, "right-number", ports=ports, readinessProbe={"tcpSocket": {"port": 80}})
    make_pod(core, ns, "no-ports", readinessProbe={"tcpSocket": {"port": 8080}})

    def running_unready(p: dict[str, Any]) -> bool:
        return "running" in (container(p).get("state") or {}) and not container(p)["ready"]

    pod = wait_pod(core, ns, "wrong-http", running_unready, "running, not ready")
    assert pod["status"]["phase"] == "Running" and condition(pod, "Ready")["status"] == "False"
    ip = pod["status"]["podIP"]
    wait_event(
        core,
        ns,
        "wrong-http",
        "Unhealthy",
        f'Readiness probe failed: Get "http://{ip}:8080/healthz": dial tcp {ip}:8080: connect: connection refused',
    )
    ip = wait_pod(core, ns, "wrong-tcp", running_unready, "running, not ready")["status"]["podIP"]
    wait_event(
        core, ns, "wrong-tcp", "Unhealthy", f"Readiness probe failed: dial tcp {ip}:9090: connect: connection refused"
    )
    for name in ("right-named", "right-number", "no-ports"):
        wait_pod(core, ns, name, is_ready, "ready")
        assert not events(core, ns, name, "Unhealthy")


# -- node states -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def private_node(kube_testenv: KubeTestEnv, kube_api_client: client.ApiClient, tmp_path_factory) -> Iterator[str]:
    """One node of its own, served by a private simulated kubelet (status interval 30 s), tainted so
    that nobody's pods land there."""
    core = client.CoreV1Api(kube_api_client)
    pool = f"sf{uuid.uuid4().hex[:6]}"
    name = f"{pool}-1"
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernaut.ai/managed": "true", "kubernetes.io/hostname": name}},
            "spec": {"taints": [{"key": "kubernaut.ai/private", "value": pool, "effect": "NoSchedule"}]},
        }
    )
    log = tmp_path_factory.mktemp("simkubelet") / "simkubelet.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-u", str(REPO_ROOT / "scripts" / "simkubelet.py"), "--kubeconfig",
             kube_testenv.admin_kubeconfig, "--nodes", "1", "--prefix", pool, "--status-interval", "30"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO_ROOT,
        )  # fmt: skip
    try:
        wait_until(
            lambda: condition(node_json(core, name), "Ready").get("status") == "True",
            timeout=60,
            what=f"private node {name} Ready (log {log})",
        )
        yield name
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        try:
            core.delete_node(name)
        except client.ApiException:
            pass


def node_json(core: client.CoreV1Api, name: str) -> dict[str, Any]:
    return core.api_client.sanitize_for_serialization(core.read_node(name))


def test_node_states(kube_api_client: client.ApiClient, kube_namespace: str, private_node: str) -> None:
    core, name, ns = client.CoreV1Api(kube_api_client), private_node, kube_namespace
    core.create_namespaced_pod(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "resident"},
            "spec": {
                "nodeName": name,
                "terminationGracePeriodSeconds": 0,
                "tolerations": [{"key": "kubernaut.ai/private", "operator": "Exists"}],
                "containers": [{"name": "app", "image": "nginx:1.25"}],
            },
        },
    )
    wait_pod(core, ns, "resident", is_ready, "pod on the private node ready")

    def set_state(value: str | None) -> None:
        core.patch_node(name, {"metadata": {"annotations": {SIM + "node-state": value}}})

    def conditions(want: dict[str, tuple[str, str]]):
        def check():
            node = node_json(core, name)
            got = {t: (condition(node, t).get("status"), condition(node, t).get("reason")) for t in want}
            return node if got == want else None

        return check

    healthy = {
        "Ready": ("True", "KubeletReady"),
        "MemoryPressure": ("False", "KubeletHasSufficientMemory"),
        "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
        "PIDPressure": ("False", "KubeletHasSufficientPID"),
    }
    try:
        # Well within the 30 s status interval: the annotation is polled.
        set_state("NotReady")
        node = wait_until(conditions({**healthy, "Ready": ("False", "KubeletNotReady")}), timeout=10, what="NotReady")
        assert condition(node, "Ready")["message"] == "container runtime is down"
        wait_until(
            lambda: any(t.key == "node.kubernetes.io/not-ready" for t in core.read_node(name).spec.taints or []),
            timeout=30,
            what="not-ready taint (node lifecycle controller)",
        )
        # A kubelet without its runtime syncs no pods: a requested crash shows only once it is back.
        core.patch_namespaced_pod("resident", ns, {"metadata": {"annotations": {SIM + "state": "CrashLoopBackOff"}}})
        time.sleep(5)
        assert is_ready(pod_json(core, ns, "resident"))
        set_state(None)
        wait_until(conditions(healthy), timeout=10, what="Ready again")
        wait_pod(core, ns, "resident", lambda p: waiting(p).get("reason") == "CrashLoopBackOff", "crash after recovery")

        for state, reason in (
            ("MemoryPressure", "KubeletHasInsufficientMemory"),
            ("DiskPressure", "KubeletHasDiskPressure"),
            ("PIDPressure", "KubeletHasInsufficientPID"),
        ):
            set_state(state)
            wait_until(conditions({**healthy, state: ("True", reason)}), timeout=10, what=state)
        set_state(None)
        wait_until(conditions(healthy), timeout=10, what="normal again")
    finally:
        set_state(None)
