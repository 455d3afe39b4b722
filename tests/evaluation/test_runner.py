"""The runner against the real control plane (scripts/testenv.sh): tiny scenarios of its own are set up,
alerted, analysed, graded and cleaned up again. What the analysis decides is not asserted beyond
being a catalog action (the analysis changes; the evaluation suite measures it)."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubernaut.evaluation.cluster import RUN_LABEL, pod_states
from kubernaut.evaluation.grading import GRADES
from kubernaut.evaluation.report import markdown, summarize
from kubernaut.evaluation.runner import InProcessAnalysis, RunOptions, RunResult, run_scenarios
from kubernaut.evaluation.scenario import load_scenarios
from kubernaut.execution.catalog.registry import CATALOG
from tests.plugins.kube_testenv import KubeTestEnv, wait_until

pytestmark = [pytest.mark.k8s, pytest.mark.integration]


def deployment(name: str, annotations: dict[str, str] | None = None, **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}, "annotations": annotations or {}},
            "spec": {"containers": [{"name": name, "image": f"registry.local/{name}:1",
                                     "resources": {"limits": {"memory": "64Mi"}}}], **pod_spec}}},
    }


def crash_alert(name: str) -> dict[str, Any]:
    return {"labels": {"alertname": "KubePodCrashLooping", "namespace": "{ns}", "pod": f"{{pod:app={name}}}",
                       "container": name, "severity": "warning"},
            "annotations": {"description": f"Pod {{ns}}/{{pod:app={name}}} is crash looping."}}


SCENARIOS: dict[str, dict[str, Any]] = {
    "t-healthy": {
        "title": "a healthy deployment and an alert about it", "class": "stale",
        "objects": [deployment("web")],
        "setup": [{"wait": {"kind": "Deployment", "name": "web", "available": 1}}],
        "ready": {"pods": "app=web", "state": "ready"},
        "alerts": [crash_alert("web")],
        "expect": {"acceptable": [{"action": "notify_only"}], "harmful": [{"action": "*mutating*"}]},
    },
    "t-crashloop": {
        "title": "a crash looping deployment", "class": "escalate",
        "namespace": {"labels": {"environment": "test"}},
        "objects": [deployment("api", {"sim.kubernaut.io/state": "CrashLoopBackOff"})],
        "ready": {"pods": "app=api", "state": "crashloop"},
        "alerts": [crash_alert("api")],
        "expect": {"escalate": True, "root_cause": ["CrashLoopBackOff"]},
    },
    "t-private-node": {
        "title": "a deployment on a private node that gets cordoned", "class": "scope", "nodes": 1,
        "objects": [deployment("batch", nodeSelector={"kubernetes.io/hostname": "{node0}"})],
        "setup": [{"wait": {"pods": "app=batch", "running": 1}}, {"cordon": {"node": "{node0}"}}],
        "alerts": [{"labels": {"alertname": "KubeNodeUnschedulable", "node": "{node0}", "severity": "warning"}}],
        "expect": {"acceptable": [{"action": "uncordon_node", "target": {"kind": "Node", "name": "{node0}"}}]},
    },
    "t-broken": {
        "title": "an object the server does not know: an error record, not a crash", "class": "fixable",
        "objects": [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}],
        "alerts": [{"labels": {"alertname": "Whatever", "namespace": "{ns}"}}],
        "expect": {"acceptable": [{"action": "notify_only"}]},
    },
}


class Recording:
    """The real in-process analysis, plus a snapshot of the cluster at the moment the alert is sent."""

    def __init__(self, env: KubeTestEnv) -> None:
        self.inner = InProcessAnalysis(env.admin_kubeconfig, "rules")
        self.api = env.api_client()
        self.description = "recording " + self.inner.description
        self.seen: dict[str, dict[str, Any]] = {}

    def snapshot(self, body: dict[str, Any]) -> dict[str, Any]:
        labels = body["alerts"][0]["labels"]
        core = client.CoreV1Api(self.api)
        if "node" in labels:
            node = core.read_node(labels["node"])
            pods = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={labels['node']}")
            return {"node": node, "pods_on_node": [p.metadata.name for p in pods.items]}
        namespace = core.read_namespace(labels["namespace"])
        pods = [self.api.sanitize_for_serialization(p) for p in core.list_namespaced_pod(labels["namespace"]).items]
        return {"namespace": namespace, "pods": pods}

    async def analyze(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.seen[body["alerts"][0]["labels"]["alertname"]] = await asyncio.to_thread(self.snapshot, body)
        return await self.inner.analyze(body)

    async def close(self) -> None:
        await self.inner.close()
        self.api.close()


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    for scenario_id, body in SCENARIOS.items():
        (tmp_path / f"{scenario_id}.yaml").write_text(yaml.safe_dump({"id": scenario_id, **body}))
    return tmp_path


def test_runner_sets_up_grades_and_cleans_up(kube_testenv: KubeTestEnv, scenario_dir: Path) -> None:
    scenarios = load_scenarios(scenario_dir)
    run_id = secrets.token_hex(3)
    recording = Recording(kube_testenv)
    options = RunOptions(kubeconfig=kube_testenv.admin_kubeconfig, concurrency=4)
    result: RunResult = asyncio.run(run_scenarios(scenarios, options, backend=recording, run_id=run_id))
    asyncio.run(recording.close())
    records = {r.id: r for r in result.records}
    assert set(records) == set(SCENARIOS)

    broken = records["t-broken"]
    assert broken.grade == "error" and broken.action is None
    assert "Widget" in (broken.error or "") and broken.error.startswith("setup:")
    for scenario_id in ("t-healthy", "t-crashloop", "t-private-node"):
        record = records[scenario_id]
        assert record.error is None, f"{scenario_id}: {record.error}"
        assert record.grade in GRADES and record.grade != "error"
        assert record.action in CATALOG, record.action
        assert record.analysis is not None and record.analysis["action"] == record.action
        assert record.webhook is not None and record.webhook["version"] == "4"
        assert record.seconds > 0
    assert records["t-crashloop"].recall is not None and records["t-crashloop"].recall.total == 1

    # Set up as written, before the alert was sent.
    healthy = recording.seen["KubePodCrashLooping"]  # last one of the two namespaced alerts; both checked below
    assert healthy["namespace"].metadata.labels.get("kubernaut.ai/managed") == "true"
    for record in (records["t-healthy"], records["t-crashloop"]):
        alert = record.webhook["alerts"][0]["labels"]
        assert alert["namespace"] == record.namespace == f"ev-{run_id}-{record.id}"
        assert alert["pod"].startswith("web-" if record.id == "t-healthy" else "api-")
    node_view = recording.seen["KubeNodeUnschedulable"]
    assert node_view["node"].spec.unschedulable is True
    assert node_view["node"].metadata.name == records["t-private-node"].nodes[0] == f"ev-{run_id}-1"
    assert len(node_view["pods_on_node"]) == 1 and node_view["pods_on_node"][0].startswith("batch-")

    # Cleaned up: namespaces deleted (or going), private nodes and their kubelet gone.
    core = client.CoreV1Api(kube_testenv.api_client())

    def namespaces_going() -> bool:
        items = core.list_namespace(label_selector=f"{RUN_LABEL}={run_id}").items
        return all(ns.metadata.deletion_timestamp is not None for ns in items)

    wait_until(namespaces_going, timeout=30, what="the run's namespaces to be deleted")
    nodes = [n.metadata.name for n in core.list_node().items if n.metadata.name.startswith(f"ev-{run_id}-")]
    assert nodes == []
    assert summarize(result.records).scenarios == 4
    assert "t-private-node" in markdown(result)


def test_pod_states_of_the_simulated_kubelet(kube_testenv: KubeTestEnv, kube_namespace: str) -> None:
    """The states the runner waits for are the ones the simulated kubelet shows."""
    api = kube_testenv.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(kube_namespace, deployment("oom", {"sim.kubernaut.io/state": "OOMKilled"}))

    def states() -> set[str] | None:
        pods = core.list_namespaced_pod(kube_namespace, label_selector="app=oom").items
        got = pod_states(api.sanitize_for_serialization(pods[0])) if pods else set()
        return got if {"oom", "crashloop"} <= got else None

    assert "running" not in wait_until(states, timeout=60, what="an OOMKilled crash looping pod")
    api.close()


def test_cli_reports_and_gates(kube_testenv: KubeTestEnv, scenario_dir: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from kubernaut.cli import main

    report, notes = tmp_path / "out" / "eval.json", tmp_path / "out" / "eval.md"
    argv = ["eval", "--kubeconfig", kube_testenv.admin_kubeconfig, "--scenarios-dir", str(scenario_dir),
            "--scenario", "t-broken", "--json", str(report), "--markdown", str(notes)]
    assert main(argv) == 0  # no gate
    out = capsys.readouterr().out
    assert "RESULT scenarios=1 acceptable=0 preferred=0 harmful=0 wrong=0 errors=1 rate=0.00 recall=0.00" in out
    document = yaml.safe_load(report.read_text())
    assert document["records"][0]["grade"] == "error" and document["summary"]["errors"] == 1
    assert "t-broken" in notes.read_text()
    assert main([*argv, "--min-rate", "0.5"]) == 1
    assert main(["eval", "--kubeconfig", kube_testenv.admin_kubeconfig, "--scenarios-dir", str(scenario_dir),
                 "--scenario", "nothing-*"]) == 2
