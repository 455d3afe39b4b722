"""The fleet's routing and keying without a control plane: config, cluster of an alert, keys, circuits, reload.

The API servers here are real HTTP listeners on loopback (a plain one answering JSON, and a closed port), so
the ``ClusterAPI`` of each cluster makes real requests through the kubernetes client.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from kubernaut.cluster.errors import Unreachable
from kubernaut.cluster.fleet import Fleet, UnknownCluster, target_key
from kubernaut.config.settings import ClusterConfig, ExecutionMode, KubernautConfig
from kubernaut.execution.pipeline import Executor
from kubernaut.models.resource import ResourceRef
from kubernaut.orchestration.policy import Conditions, PolicyInput, _holds


class _Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"kind": "Namespace", "metadata": {"name": self.path.rsplit("/", 1)[-1]},
                           "served_by": self.server.server_port}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kubeconfig(path: Path, port: int) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def test_a_single_cluster_config_is_a_fleet_of_one_named_cluster_name() -> None:
    config = KubernautConfig(cluster_name="Prod_EU", kubernetes={"kubeconfig": "/k/config", "context": "x"})
    (only,) = config.clusters()
    assert (only.name, str(only.kubeconfig), only.context) == ("Prod_EU", "/k/config", "x")
    assert config.home_cluster == "Prod_EU"
    assert only.execution_for(config.execution) == config.execution


def test_fleet_entries_override_execution_and_are_validated() -> None:
    config = KubernautConfig(execution={"mode": "live", "managed_namespaces": ["a"], "max_mutations_per_window": 9},
                             fleet={"clusters": [{"name": "a", "kubeconfig": "/a"},
                                                 {"name": "b", "kubeconfig_secret": "kubernaut/b-kubeconfig",
                                                  "mode": "dry-run", "managed_namespaces": ["shop"],
                                                  "max_mutations_per_window": 2}]})
    a, b = config.clusters()
    assert a.execution_for(config.execution).mode is ExecutionMode.LIVE
    eb = b.execution_for(config.execution)
    assert (eb.mode, eb.managed_namespaces, eb.max_mutations_per_window) == (ExecutionMode.DRY_RUN, ["shop"], 2)
    assert eb.cooldown_s == config.execution.cooldown_s  # unset fields are the top-level ones
    with pytest.raises(ValidationError, match="duplicate name"):
        KubernautConfig(fleet={"clusters": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ValidationError, match="one of in_cluster, kubeconfig, kubeconfig_secret"):
        ClusterConfig(name="a", in_cluster=True, kubeconfig="/a")
    with pytest.raises(ValidationError, match="name"):
        ClusterConfig(name="Not A Name")


def test_cluster_of_an_alert_and_unknown_clusters_fail_closed(tmp_path: Path, api_server: int) -> None:
    config = KubernautConfig(cluster_name="a", fleet={"clusters": [
        {"name": "a", "kubeconfig": str(_kubeconfig(tmp_path / "a", api_server))},
        {"name": "b", "kubeconfig": str(_kubeconfig(tmp_path / "b", api_server))}]})
    fleet = Fleet.build(config)
    assert fleet.cluster_of({"alertname": "X"}) == "a"  # no label: the home cluster
    assert fleet.cluster_of({"cluster": "b"}) == "b"
    assert fleet.cluster_of({"cluster": "c"}) == "c" and not fleet.known("c")
    with pytest.raises(UnknownCluster, match="'c' is not configured"):
        fleet.api("c")
    assert fleet.api("a") is not fleet.api("b")
    relabelled = Fleet.build(config.model_copy(update={"fleet": config.fleet.model_copy(
        update={"cluster_label": "k8s_cluster"})}))
    assert relabelled.cluster_of({"cluster": "b"}) == "a" and relabelled.cluster_of({"k8s_cluster": "b"}) == "b"


def test_keys_carry_the_cluster_except_the_home_clusters() -> None:
    ref = ResourceRef(kind="Deployment", name="web", namespace="shop")
    assert target_key(ref.key, None, "a") == target_key(ref.key, "a", "a") == "shop:Deployment:web"
    assert target_key(ref.key, "b", "a") == "b@shop:Deployment:web"
    single = Executor(None, KubernautConfig().execution, None, cluster="local")  # type: ignore[arg-type]
    home = Executor(None, KubernautConfig().execution, None, cluster="a", fleet_home="a")  # type: ignore[arg-type]
    spoke = Executor(None, KubernautConfig().execution, None, cluster="b", fleet_home="a")  # type: ignore[arg-type]
    assert single._key(ref) == home._key(ref) == ref.key and spoke._key(ref) == "b@shop:Deployment:web"
    assert (single._budget_cluster, home._budget_cluster, spoke._budget_cluster) == (None, "a", "b")


def test_an_unreachable_cluster_opens_only_its_own_circuit(tmp_path: Path, api_server: int) -> None:
    config = KubernautConfig(cluster_name="a", fleet={"circuit_failures": 2, "circuit_reset_s": 60, "clusters": [
        {"name": "a", "kubeconfig": str(_kubeconfig(tmp_path / "a", api_server))},
        {"name": "b", "kubeconfig": str(_kubeconfig(tmp_path / "b", _closed_port()))}]})
    fleet = Fleet.build(config, timeout_s=2, read_retries=0)
    a, b = fleet.api("a"), fleet.api("b")
    assert a is not None and b is not None
    for _ in range(2):
        with pytest.raises(Unreachable):
            b.call("GET", "/api/v1/namespaces/shop")
    assert fleet.degraded() == ["b"]
    with pytest.raises(Unreachable, match="cluster b unreachable \\(circuit open"):
        b.call("GET", "/api/v1/namespaces/shop")
    assert a.call("GET", "/api/v1/namespaces/shop")["metadata"]["name"] == "shop"
    snapshot = fleet.snapshot()
    assert snapshot["a"]["circuit"]["state"] == "closed" and snapshot["b"]["circuit"]["state"] == "open"


def test_a_changed_kubeconfig_is_reloaded_in_place(tmp_path: Path, api_server: int) -> None:
    path = _kubeconfig(tmp_path / "b", _closed_port())
    config = KubernautConfig(cluster_name="b", fleet={"circuit_failures": 1, "clusters": [
        {"name": "b", "kubeconfig": str(path)}]})
    fleet = Fleet.build(config, timeout_s=2, read_retries=0)
    api = fleet.api("b")
    assert api is not None
    with pytest.raises(Unreachable):
        api.call("GET", "/api/v1/namespaces/shop")
    assert fleet.reload_blocking() == []  # unchanged file: nothing to do
    _kubeconfig(path, api_server)
    assert fleet.reload_blocking() == ["b"]
    assert fleet.api("b") is api  # the same facade: every holder sees the new credentials
    assert api.call("GET", "/api/v1/namespaces/shop")["served_by"] == api_server
    assert fleet.degraded() == []


def test_policy_rules_can_match_the_cluster() -> None:
    facts = PolicyInput(environment="production", priority="P1", severity="high", risk="low", target_kind="Deployment",
                        action="restart_deployment", namespace="shop", engine="rules", mutates=True, sensitive=False,
                        confidence=0.9, cluster="prod-eu-1")
    assert _holds(Conditions(cluster=["prod-eu-*"]), facts, None)  # type: ignore[arg-type]
    assert not _holds(Conditions(cluster=["staging-*"]), facts, None)  # type: ignore[arg-type]


def test_a_clusters_event_source_labels_its_alerts_with_the_cluster() -> None:
    from kubernaut.config.settings import EventSourceConfig
    from kubernaut.processing.event_signals import event_to_signal

    ev = {"metadata": {"name": "web-5f6d7c8b9-abcde.17a1", "namespace": "shop", "resourceVersion": "42"},
          "involvedObject": {"kind": "Pod", "name": "web-5f6d7c8b9-abcde", "namespace": "shop", "uid": "uid-1"},
          "reason": "BackOff", "message": "Back-off restarting failed container", "type": "Warning", "count": 1,
          "firstTimestamp": "2026-11-26T04:00:00Z", "lastTimestamp": "2026-11-26T04:00:00Z"}
    alone = event_to_signal(ev, EventSourceConfig())
    a = event_to_signal(ev, EventSourceConfig(), cluster="a", cluster_label="k8s_cluster")
    b = event_to_signal(ev, EventSourceConfig(), cluster="b", cluster_label="k8s_cluster")
    assert alone is not None and a is not None and b is not None
    assert "k8s_cluster" not in alone.alert.labels  # one cluster: the alert is what it always was
    assert (a.alert.labels["k8s_cluster"], b.alert.labels["k8s_cluster"]) == ("a", "b")
    assert len({alone.alert.fingerprint, a.alert.fingerprint, b.alert.fingerprint}) == 3
