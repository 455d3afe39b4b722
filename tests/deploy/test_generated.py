"""Generated deploy/ files: never stale, serveConfigV2 = serve_config.yaml + documented overrides, RBAC = catalog."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DEPLOY, REPO_ROOT, generator, load_docs, rayservice, serve_config_of

VARIANTS = ("cpu", "llm")


def test_generated_files_are_up_to_date() -> None:
    stale = generator().stale_files()
    assert not stale, "run scripts/gen-rayservice.py:\n" + "\n".join(stale.values())


def test_check_mode_passes_on_this_checkout() -> None:
    proc = subprocess.run([sys.executable, "scripts/gen-rayservice.py", "--check"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def _copy_sources(tmp: Path) -> Path:
    """A scratch repository root with the generator's inputs and outputs."""
    shutil.copy(REPO_ROOT / "serve_config.yaml", tmp / "serve_config.yaml")
    shutil.copytree(DEPLOY, tmp / "deploy")
    shutil.copytree(REPO_ROOT / "cluster", tmp / "cluster")
    return tmp


def test_drift_between_serve_config_and_rayservice_is_detected(tmp_path: Path) -> None:
    """Changing serve_config.yaml without regenerating fails the check, naming every derived file."""
    root = _copy_sources(tmp_path)
    config = (root / "serve_config.yaml").read_text()
    assert "max_ongoing_requests: 200" in config
    (root / "serve_config.yaml").write_text(config.replace("max_ongoing_requests: 200", "max_ongoing_requests: 201"))
    stale = generator().stale_files(root)
    assert set(stale) == {Path("deploy/50-rayservice.yaml"), Path("deploy/llm/rayservice.yaml"),
                          Path("cluster/serve-cluster.yaml")}
    diff = stale[Path("deploy/50-rayservice.yaml")].splitlines()
    assert any(line.startswith("+") and line.strip().endswith("max_ongoing_requests: 201") for line in diff)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gen-rayservice.py"), "--check",
                           "--root", str(root)], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1 and "stale: deploy/50-rayservice.yaml" in proc.stderr
    # Regenerating repairs it.
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "gen-rayservice.py"), "--root", str(root)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert generator().stale_files(root) == {}
    regenerated = serve_config_of(load_docs(root / "deploy" / "50-rayservice.yaml")[0])
    assert regenerated["applications"][0]["args"]["deployments"]["processor"]["max_ongoing_requests"] == 201


def test_hand_edit_of_generated_rayservice_is_detected(tmp_path: Path) -> None:
    root = _copy_sources(tmp_path)
    path = root / "deploy" / "50-rayservice.yaml"
    path.write_text(path.read_text().replace("mode: dry-run", "mode: live"))
    assert Path("deploy/50-rayservice.yaml") in generator().stale_files(root)


def _leaves(node: Any, path: tuple = ()) -> dict[tuple, Any]:
    if isinstance(node, dict):
        out: dict[tuple, Any] = {}
        for key, value in node.items():
            out.update(_leaves(value, (*path, key)))
        return out
    if isinstance(node, list) and node and all(isinstance(i, dict) and "name" in i for i in node):
        out = {}
        for item in node:
            out.update(_leaves(item, (*path, item["name"])))
        return out
    return {path: node}


@pytest.mark.parametrize("variant", VARIANTS)
def test_serve_config_v2_is_serve_config_plus_the_documented_overrides(variant: str) -> None:
    """Every value of serve_config.yaml reaches the RayService unless an override names it, and nothing
    else is added: the check does not reuse the generator's merge."""
    source = _leaves(yaml.safe_load((REPO_ROOT / "serve_config.yaml").read_text()))
    overrides_doc = yaml.safe_load((DEPLOY / "src" / "serve-overrides.yaml.in").read_text())
    overrides = _leaves(overrides_doc["common"])
    overrides.update(_leaves(overrides_doc["kuberay"]))  # the worker-group layout: RayServices only
    if variant == "llm":
        overrides.update(_leaves(overrides_doc["llm"]))
    generated = _leaves(serve_config_of(rayservice(variant)))
    for path, value in source.items():
        if path in overrides:
            assert generated[path] == overrides[path], path
        else:
            assert generated.get(path, "<missing>") == value, f"{'.'.join(map(str, path))} drifted"
    assert set(generated) == set(source) | set(overrides)


def test_cluster_serve_config_is_the_cpu_serve_config_v2_without_the_worker_groups() -> None:
    """`ray up` clusters have no KubeRay worker groups: their Serve config is the RayService's without the
    `kuberay` overrides (custom resources no `ray up` node offers would leave replicas unscheduled)."""
    (cluster_config,) = load_docs(REPO_ROOT / "cluster" / "serve-cluster.yaml")
    assert cluster_config == generator().serve_config_v2("cpu", kuberay=False)
    expected = serve_config_of(rayservice("cpu"))
    for app in expected["applications"]:
        for settings in app["args"]["deployments"].values():
            settings.pop("resources", None), settings.pop("config_from_replica_env", None)
        app["args"]["deployments"]["executor"]["num_cpus"] = cluster_config["applications"][0]["args"][
            "deployments"]["executor"]["num_cpus"]
    assert cluster_config == expected
    for settings in cluster_config["applications"][0]["args"]["deployments"].values():
        assert "resources" not in settings


@pytest.mark.parametrize("variant", VARIANTS)
def test_serve_config_v2_is_valid_for_ray_serve(variant: str) -> None:
    from ray.serve.schema import ServeDeploySchema

    config = serve_config_of(rayservice(variant))
    ServeDeploySchema.model_validate(config)
    assert config["logging_config"]["encoding"] == "JSON"


@pytest.mark.parametrize("variant", VARIANTS)
def test_kubernaut_args_build_a_valid_config(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernaut.config import load_config

    monkeypatch.setenv("DATABASE_URL", "postgresql://kubernaut@db.example:5432/kubernaut")
    apps = {a["name"]: a for a in serve_config_of(rayservice(variant))["applications"]}
    config = load_config(apps["kubernaut"]["args"])
    assert config.dry_run, "the manifests keep execution in dry-run; live is an explicit choice"
    assert config.deployments["gateway"].autoscaling.min_replicas >= 2
    assert config.storage.dsn is not None
    assert config.analysis.llm_enabled is (variant == "llm")


def test_llm_app_config_validates_with_ray_serve_llm() -> None:
    llm = pytest.importorskip("ray.serve.llm", reason="the `llm` extra (vLLM) is for GPU machines only")
    apps = {a["name"]: a for a in serve_config_of(rayservice("llm"))["applications"]}
    for config in apps["llm"]["args"]["llm_configs"]:
        llm.LLMConfig(**config)


def test_executor_cluster_role_is_generated_from_the_catalog() -> None:
    from kubernaut.execution.catalog import rbac_rules

    docs = {(d["kind"], d["metadata"]["name"]): d for d in load_docs(DEPLOY / "10-rbac.yaml")}
    assert docs[("ClusterRole", "kubernaut-executor")]["rules"] == rbac_rules()
    binding = docs[("ClusterRoleBinding", "kubernaut-executor")]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "kubernaut-executor"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kubernaut-executor", "namespace": "kubernaut"}]
    # The head's account is bound to nothing of ours (KubeRay binds its autoscaler Role to it).
    bound = {s["name"] for d in docs.values() if d["kind"].endswith("Binding") for s in d["subjects"]}
    assert "kubernaut-ray-head" not in bound and ("ServiceAccount", "kubernaut-ray-head") in docs


def test_cluster_roles_are_least_privilege() -> None:
    for doc in load_docs(DEPLOY / "10-rbac.yaml"):
        if doc["kind"] != "ClusterRole":
            continue
        for rule in doc["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert not {"secrets", "clusterroles", "clusterrolebindings", "roles", "rolebindings"} & set(
                rule["resources"]), rule
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"]), rule


def test_dashboard_configmap_holds_the_built_dashboard() -> None:
    from kubernaut.observability.dashboard import build_dashboard

    (configmap,) = load_docs(DEPLOY / "monitoring" / "grafana-dashboard.yaml")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["kubernaut.json"]) == build_dashboard()


def test_template_errors_are_reported() -> None:
    gen = generator()
    with pytest.raises(gen.TemplateError, match="undefined snippet"):
        gen.expand_template("a: 1\n# @include nope\n", "cpu", {})
    with pytest.raises(gen.TemplateError, match="unterminated"):
        gen.expand_template("# @if llm\na: 1\n", "cpu", {})
    with pytest.raises(gen.TemplateError, match="unknown directive"):
        gen.expand_template("# @iff llm\n", "cpu", {})
    text = gen.expand_template("## dropped\n# @define s\nx: 1\n# @enddefine\nk:\n  # @include s\n# @if llm\nl: @V@\n"
                               "# @endif\n", "llm", {"V": "2"})
    assert yaml.safe_load(text) == {"k": {"x": 1}, "l": 2}
    assert "dropped" not in text
