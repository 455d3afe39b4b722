"""The Kubernetes test control plane itself: real kube-apiserver/controllers/scheduler + simulated kubelet."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.plugins.kube_testenv import MANAGED_LABEL, KubeTestEnv, wait_until

pytestmark = pytest.mark.k8s

SIM_STATE = "sim.kubernaut.io/state"
SIM_NODE_LABEL = "sim.kubernaut.io/node"


# -- helpers -----------------------------------------------------------------------------------
def make_deployment(name: str, replicas: int = 1, annotations: dict[str, str] | None = None) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels, annotations=annotations),
                spec=client.V1PodSpec(
                    termination_grace_period_seconds=30,
                    containers=[
                        client.V1Container(
                            name="app",
                            image="nginx:1.25",
                            resources=client.V1ResourceRequirements(
                                requests={"cpu": "100m", "memory": "64Mi"}, limits={"memory": "128Mi"}
                            ),
                        )
                    ],
                ),
            ),
        ),
    )


def pods_of(core: client.CoreV1Api, ns: str, app: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"app={app}").items


def live(pods: list[client.V1Pod]) -> list[client.V1Pod]:
    return [p for p in pods if p.metadata.deletion_timestamp is None]


def is_ready(pod: client.V1Pod) -> bool:
    return pod.status.phase == "Running" and any(
        c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
    )


def wait_ready_pods(core: client.CoreV1Api, ns: str, app: str, n: int, timeout: float = 60) -> list[client.V1Pod]:
    def check():
        pods = pods_of(core, ns, app)
        ready = [p for p in live(pods) if is_ready(p)]
        return ready if len(ready) == n and len(pods) == n else None

    return wait_until(check, timeout=timeout, what=f"{n} ready pods of {app} in {ns}")


def wait_deployment_ready(apps: client.AppsV1Api, ns: str, name: str, n: int, timeout: float = 60) -> None:
    def check():
        d = apps.read_namespaced_deployment(name, ns)
        s = d.status
        return (
            s.observed_generation == d.metadata.generation
            and (s.ready_replicas or 0) == n
            and (s.available_replicas or 0) == n
            and (s.updated_replicas or 0) == n
            and (s.replicas or 0) == n
        )

    wait_until(check, timeout=timeout, what=f"deployment {ns}/{name} with {n} ready replicas")


def eviction_version(api_client: client.ApiClient) -> str:
    """The policy group version the server offers for Eviction (v1 on >=1.22, v1beta1 on 1.20)."""
    group = client.PolicyApi(api_client).get_api_group()
    offered = {v.version for v in group.versions}
    for version in ("v1", "v1beta1"):
        if version in offered:
            return version
    raise AssertionError(f"no known policy version offered: {offered}")


# -- tests -------------------------------------------------------------------------------------
def test_nodes_ready(kube_api_client: client.ApiClient) -> None:
    # The testenv's own nodes (an evaluation run's private nodes are broken on purpose while it runs).
    nodes = client.CoreV1Api(kube_api_client).list_node(
        label_selector=f"{SIM_NODE_LABEL}=true,!kubernaut.ai/eval-run").items
    assert len(nodes) >= 2
    for node in nodes:
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", node.metadata.name
        assert node.status.allocatable["cpu"] and node.status.allocatable["pods"]
        assert not any(t.key == "node.kubernetes.io/not-ready" for t in node.spec.taints or [])


def test_server_version_and_kubeconfigs(kube_testenv: KubeTestEnv, kube_api_client: client.ApiClient) -> None:
    version = client.VersionApi(kube_api_client).get_code()
    assert version.major == "1" and version.git_version.startswith("v1.")
    for path in (
        kube_testenv.admin_kubeconfig,
        kube_testenv.rightless_kubeconfig,
        kube_testenv.executor_kubeconfig,
    ):
        assert path.startswith("/")


def test_namespace_fixture_labelled(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    ns = client.CoreV1Api(kube_api_client).read_namespace(kube_namespace)
    assert ns.metadata.labels[MANAGED_LABEL] == "true"


def test_deployment_ready_and_scale(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, apps = client.CoreV1Api(kube_api_client), client.AppsV1Api(kube_api_client)
    apps.create_namespaced_deployment(kube_namespace, make_deployment("web", replicas=3))
    wait_deployment_ready(apps, kube_namespace, "web", 3)
    pods = wait_ready_pods(core, kube_namespace, "web", 3)
    for pod in pods:
        assert pod.status.pod_ip and pod.status.host_ip and pod.spec.node_name
        (cs,) = pod.status.container_statuses
        assert cs.ready and cs.started and cs.state.running.started_at
        assert cs.image == "nginx:1.25" and cs.image_id and cs.container_id
    assert len({p.status.pod_ip for p in pods}) == 3

    scale = apps.read_namespaced_deployment_scale("web", kube_namespace)
    assert scale.spec.replicas == 3
    apps.patch_namespaced_deployment_scale("web", kube_namespace, {"spec": {"replicas": 5}})
    wait_deployment_ready(apps, kube_namespace, "web", 5)
    apps.patch_namespaced_deployment_scale("web", kube_namespace, {"spec": {"replicas": 1}})
    wait_deployment_ready(apps, kube_namespace, "web", 1)
    # Scale-down deletes pods gracefully: the simulated kubelet must finish the deletions.
    wait_ready_pods(core, kube_namespace, "web", 1)


def _waiting(cs: client.V1ContainerStatus) -> str | None:
    return cs.state.waiting.reason if cs.state and cs.state.waiting else None


def _crashloop(cs: client.V1ContainerStatus) -> bool:
    t = cs.last_state.terminated if cs.last_state else None
    return (
        _waiting(cs) == "CrashLoopBackOff"
        and cs.restart_count > 0
        and t is not None
        and t.exit_code == 1
        and t.reason == "Error"
        and not cs.ready
    )


def _oomkilled(cs: client.V1ContainerStatus) -> bool:
    t = cs.last_state.terminated if cs.last_state else None
    return (
        _waiting(cs) == "CrashLoopBackOff"
        and cs.restart_count >= 1
        and t is not None
        and t.reason == "OOMKilled"
        and t.exit_code == 137
        and not cs.ready
    )


def _imagepull(cs: client.V1ContainerStatus) -> bool:
    return _waiting(cs) == "ImagePullBackOff" and not cs.ready and cs.restart_count == 0


def _notready(cs: client.V1ContainerStatus) -> bool:
    return cs.state.running is not None and not cs.ready


@pytest.mark.parametrize(
    ("state", "check"),
    [
        ("CrashLoopBackOff", _crashloop),
        ("OOMKilled", _oomkilled),
        ("ImagePullBackOff", _imagepull),
        ("NotReady", _notready),
    ],
)
def test_simulated_failure_states(kube_api_client: client.ApiClient, kube_namespace: str, state: str, check) -> None:
    core, apps = client.CoreV1Api(kube_api_client), client.AppsV1Api(kube_api_client)
    apps.create_namespaced_deployment(
        kube_namespace, make_deployment("bad", replicas=2, annotations={SIM_STATE: state})
    )

    def failing():
        pods = live(pods_of(core, kube_namespace, "bad"))
        ok = [p for p in pods if p.status.container_statuses and check(p.status.container_statuses[0])]
        return ok if len(ok) == 2 else None

    pods = wait_until(failing, timeout=60, what=f"2 pods in {state}")
    for pod in pods:
        assert pod.metadata.annotations[SIM_STATE] == state  # copied from the pod template
        assert not is_ready(pod)
    d = apps.read_namespaced_deployment("bad", kube_namespace)
    assert not d.status.ready_replicas

    # Removing the annotation from a pod heals it in place.
    name = pods[0].metadata.name
    core.patch_namespaced_pod(name, kube_namespace, {"metadata": {"annotations": {SIM_STATE: None}}})
    wait_until(lambda: is_ready(core.read_namespaced_pod(name, kube_namespace)), timeout=30, what="healed pod")

    # Fixing the template rolls out healthy pods.
    apps.patch_namespaced_deployment(
        "bad", kube_namespace, {"spec": {"template": {"metadata": {"annotations": {SIM_STATE: None}}}}}
    )
    wait_deployment_ready(apps, kube_namespace, "bad", 2)


def test_crashloop_restart_count_grows_and_events(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api_client)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="crasher", annotations={SIM_STATE: "CrashLoopBackOff"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
    )
    core.create_namespaced_pod(kube_namespace, pod)

    def restarts() -> int:
        statuses = core.read_namespaced_pod("crasher", kube_namespace).status.container_statuses or []
        return statuses[0].restart_count if statuses else 0

    first = wait_until(restarts, timeout=30, what="first restart")
    wait_until(lambda: restarts() > first, timeout=40, what="restart count to grow")
    events = core.list_namespaced_event(kube_namespace, field_selector="involvedObject.name=crasher").items
    assert any(e.reason == "BackOff" and e.type == "Warning" for e in events)


def test_cordon_and_evict_reschedules(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, apps = client.CoreV1Api(kube_api_client), client.AppsV1Api(kube_api_client)
    apps.create_namespaced_deployment(kube_namespace, make_deployment("evictme", replicas=1))
    (pod,) = wait_ready_pods(core, kube_namespace, "evictme", 1)
    node = pod.spec.node_name
    version = eviction_version(kube_api_client)
    core.patch_node(node, {"spec": {"unschedulable": True}})
    try:
        # A cordoned node stays Ready (unschedulable is the scheduler's business).
        wait_until(
            lambda: any(t.key == "node.kubernetes.io/unschedulable" for t in core.read_node(node).spec.taints or []),
            timeout=30,
            what="unschedulable taint",
        )
        assert any(c.type == "Ready" and c.status == "True" for c in core.read_node(node).status.conditions)
        eviction = {
            "apiVersion": f"policy/{version}",
            "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": kube_namespace},
        }
        core.create_namespaced_pod_eviction(pod.metadata.name, kube_namespace, eviction)

        def moved():
            pods = pods_of(core, kube_namespace, "evictme")
            if any(p.metadata.name == pod.metadata.name for p in pods):
                return None
            ready = [p for p in pods if is_ready(p)]
            return ready if len(ready) == 1 else None

        (new,) = wait_until(moved, timeout=60, what="evicted pod replaced")
        assert new.spec.node_name != node
        assert any(c.type == "Ready" and c.status == "True" for c in core.read_node(node).status.conditions)
    finally:
        core.patch_node(node, {"spec": {"unschedulable": None}})


def test_rightless_token_is_forbidden(kube_testenv: KubeTestEnv, kube_namespace: str) -> None:
    api = kube_testenv.api_client(kube_testenv.rightless_kubeconfig)
    try:
        with pytest.raises(ApiException) as exc:
            client.CoreV1Api(api).list_namespaced_pod(kube_namespace)
        assert exc.value.status == 403
    finally:
        api.close()


def test_executor_binding_exists(kube_api_client: client.ApiClient) -> None:
    crb = client.RbacAuthorizationV1Api(kube_api_client).read_cluster_role_binding("kubernaut-executor")
    assert crb.role_ref.kind == "ClusterRole" and crb.role_ref.name == "kubernaut-executor"
    assert [(s.kind, s.name) for s in crb.subjects] == [("User", "kubernaut-executor")]


def test_graceful_pod_deletion_completes(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api_client)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="solo"),
        spec=client.V1PodSpec(
            termination_grace_period_seconds=300,
            containers=[client.V1Container(name="app", image="nginx:1.25")],
        ),
    )
    core.create_namespaced_pod(kube_namespace, pod)
    wait_until(lambda: is_ready(core.read_namespaced_pod("solo", kube_namespace)), timeout=30, what="solo ready")
    core.delete_namespaced_pod("solo", kube_namespace)  # default grace: 300 s

    def gone() -> bool:
        try:
            core.read_namespaced_pod("solo", kube_namespace)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until(gone, timeout=30, what="graceful deletion to finish")


def test_job_pods_run_and_complete(kube_api_client: client.ApiClient, kube_namespace: str) -> None:
    core, batch = client.CoreV1Api(kube_api_client), client.BatchV1Api(kube_api_client)

    def job(name: str, annotations: dict[str, str] | None) -> client.V1Job:
        return client.V1Job(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(annotations=annotations),
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="task", image="busybox:1.36")],
                    ),
                ),
            ),
        )

    batch.create_namespaced_job(kube_namespace, job("runs", None))
    batch.create_namespaced_job(kube_namespace, job("done", {"sim.kubernaut.io/complete": "true"}))
    wait_until(
        lambda: (batch.read_namespaced_job("done", kube_namespace).status.succeeded or 0) == 1,
        timeout=60,
        what="job done to succeed",
    )
    pods = wait_until(
        lambda: [
            p for p in core.list_namespaced_pod(kube_namespace, label_selector="job-name=runs").items if is_ready(p)
        ],
        timeout=30,
        what="job runs pod running",
    )
    assert pods[0].status.phase == "Running"
    assert not batch.read_namespaced_job("runs", kube_namespace).status.succeeded
