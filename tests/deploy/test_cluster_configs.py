"""cluster/: `ray up` configs checked with Ray's own schema and validation, the dev cluster script's flags."""

from __future__ import annotations

import copy
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

from tests.deploy.manifests import CLUSTER, REPO_ROOT, pod_templates, ray_container, ray_start_options, rayservice

RAY_UP_CONFIGS = ("aws.yaml", "onprem.yaml")
RAY_PACKAGE = Path(ray.__file__).parent
DEV_SCRIPT = CLUSTER / "dev" / "ray-dev-cluster.sh"


def _config(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _ray_schema() -> dict:
    return json.loads((RAY_PACKAGE / "autoscaler" / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", RAY_UP_CONFIGS)
def test_ray_up_config_matches_rays_schema(name: str) -> None:
    """The raw file against ray/autoscaler/ray-schema.json of the installed Ray, then `ray up`'s own
    preparation (provider defaults) and validation."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _config(name)
    jsonschema.validate(config, _ray_schema())
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["docker"].update(imagee="x"), "imagee"),
        (lambda c: c["available_node_types"]["cpu_worker"].update(min_worker=1), "min_worker"),
        (lambda c: c["available_node_types"]["head"].update(resources={"CPU": -1}), "-1"),
        (lambda c: c.update(idle_timeout_minutes="five"), "five"),
    ],
    ids=["docker-typo", "node-type-typo", "negative-resource", "wrong-type"],
)
def test_rays_schema_rejects_broken_configs(mutate, expected: str) -> None:
    config = _config("aws.yaml")
    mutate(config)
    with pytest.raises(jsonschema.ValidationError, match=expected):
        jsonschema.validate(config, _ray_schema())


def _start_commands(config: dict) -> dict[str, str]:
    return {
        "head": " ".join(config["head_start_ray_commands"]),
        "worker": " ".join(config["worker_start_ray_commands"]),
    }


def _ray_start_flags(command: str) -> set[str]:
    flags: set[str] = set()
    for part in re.split(r"[;&|]+", command):
        tokens = shlex.split(part)
        if tokens[:2] == ["ray", "start"] or ("ray" in tokens and tokens[tokens.index("ray") + 1:][:1] == ["start"]):
            flags |= {t.split("=", 1)[0] for t in tokens if t.startswith("--")}
    return flags


def _ray_config_names(command: str) -> set[str]:
    """RAY_<name>=... assignments of Ray system config entries (lower-case names)."""
    return set(re.findall(r"\bRAY_([a-z][a-z0-9_]+)=", command))


@pytest.mark.parametrize("name", RAY_UP_CONFIGS)
def test_start_commands_use_real_ray_options_and_config_keys(name: str) -> None:
    options = ray_start_options()
    commands = _start_commands(_config(name))
    binaries = [(RAY_PACKAGE / "_raylet.so").read_bytes(), (RAY_PACKAGE / "core/src/ray/gcs/gcs_server").read_bytes()]
    for role, command in commands.items():
        flags = _ray_start_flags(command)
        assert flags, f"{role}: no `ray start`"
        assert flags <= options, f"{role}: unknown `ray start` options {flags - options}"
        for key in _ray_config_names(command):
            # Ray's system config (RAY_<name>) lives in C++: the key must be compiled into Ray.
            assert any(key.encode() in blob for blob in binaries), f"{role}: RAY_{key} is not a Ray config entry"
    head, worker = commands["head"], commands["worker"]
    assert "--num-cpus=0" in head, "the head runs no replicas, as on KubeRay"
    assert "RAY_REDIS_ADDRESS=" in head and '--redis-password="$RAY_REDIS_PASSWORD"' in head, "GCS FT via Redis"
    assert "RAY_external_storage_namespace=" in head
    assert "RAY_gcs_rpc_server_reconnect_timeout_s=" in worker, "workers must outlive a head restart"
    assert "--metrics-export-port=8080" in head and "--metrics-export-port=8080" in worker


def test_aws_cluster_shape_matches_the_rayservice() -> None:
    config = _config("aws.yaml")
    types = config["available_node_types"]
    assert types["head"]["resources"] == {"CPU": 0}
    assert types["cpu_worker"]["min_workers"] >= 2 and types["cpu_worker"]["max_workers"] > 2
    assert types["gpu_worker"]["min_workers"] == 0 < types["gpu_worker"]["max_workers"]
    images = {ray_container(t)["image"] for _, t in pod_templates(rayservice("cpu"))}
    assert config["docker"]["image"] in images, "same image as the KubeRay pods"
    llm_images = {ray_container(t)["image"] for _, t in pod_templates(rayservice("llm"))}
    assert types["gpu_worker"]["docker"]["worker_image"] in llm_images


@pytest.mark.parametrize("name", RAY_UP_CONFIGS)
def test_no_secret_values_in_ray_up_configs(name: str) -> None:
    text = (CLUSTER / name).read_text()
    assert "--env-file /etc/kubernaut/kubernaut.env" in text
    assert not re.search(r"(?i)(password|token|api[_-]?key)\s*[:=]\s*[\"']?[A-Za-z0-9]{8,}", text)
    for target, source in _config(name)["file_mounts"].items():
        assert (REPO_ROOT / source).is_file(), f"file_mounts source {source} does not exist"
        assert target.startswith("/home/ray/")


def test_dev_script_is_valid_bash_and_uses_real_ray_start_options() -> None:
    subprocess.run(["bash", "-n", str(DEV_SCRIPT)], check=True, timeout=30)
    code = [line for line in DEV_SCRIPT.read_text().splitlines() if not line.lstrip().startswith("#")]
    used = {flag for line in code for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", line)}
    assert {"--head", "--num-cpus", "--metrics-export-port", "--dashboard-agent-listen-port", "--temp-dir"} <= used
    unknown = used - ray_start_options()  # `serve deploy --address` is a `ray start` option too
    assert not unknown, f"ray-dev-cluster.sh passes unknown `ray start` options: {unknown}"
    assert not [line for line in code if re.search(r"\bray stop\b", line)], "`ray stop` would stop every cluster"


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_dev_script_passes_shellcheck() -> None:
    proc = subprocess.run(["shellcheck", str(DEV_SCRIPT)], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout
