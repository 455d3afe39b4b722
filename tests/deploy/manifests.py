"""Helpers of the deploy/ and cluster/ tests: loading manifests, KubeRay CRD schemas, the generator."""

from __future__ import annotations

import copy
import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
CLUSTER = REPO_ROOT / "cluster"
KUBERAY_DATA = REPO_ROOT / "tests" / "data" / "kuberay"
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# Directories whose manifests need only core Kubernetes kinds (applied with `kubectl apply -f <dir>`).
CORE_DIRS = (DEPLOY, DEPLOY / "examples")
RAY_CONTAINERS = ("ray-head", "ray-worker")


@functools.cache
def generator() -> ModuleType:
    """scripts/gen-rayservice.py as a module (its name has a dash)."""
    path = REPO_ROOT / "scripts" / "gen-rayservice.py"
    spec = importlib.util.spec_from_file_location("gen_rayservice", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_rayservice"] = module
    spec.loader.exec_module(module)
    return module


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def manifest_files(root: Path = DEPLOY) -> list[Path]:
    """Every file `kubectl apply -R -f deploy/` would read."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)


def all_objects(root: Path = DEPLOY) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in manifest_files(root) for doc in load_docs(path)]


def rayservice(variant: str) -> dict[str, Any]:
    path = DEPLOY / ("50-rayservice.yaml" if variant == "cpu" else "llm/rayservice.yaml")
    (doc,) = load_docs(path)
    return doc


def serve_config_of(service: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(service["spec"]["serveConfigV2"])


def cluster_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["rayClusterConfig"] if obj["kind"] == "RayService" else obj["spec"]


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(group name, pod template) of a RayService or RayCluster; the head is group "head"."""
    spec = cluster_spec(obj)
    yield "head", spec["headGroupSpec"]["template"]
    for group in spec.get("workerGroupSpecs", []):
        yield group["groupName"], group["template"]


def ray_container(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = [c for c in template["spec"]["containers"] if c["name"] in RAY_CONTAINERS]
    return container


def containers(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, container) of every pod template in a core workload."""
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        for c in obj["spec"]["template"]["spec"]["containers"]:
            yield f"{kind}/{obj['metadata']['name']}", c
    elif kind in ("RayService", "RayCluster"):
        for group, template in pod_templates(obj):
            for c in template["spec"]["containers"]:
                yield f"{kind}/{obj['metadata']['name']}/{group}", c


# -- KubeRay CRD schemas --------------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """Reject unknown fields like the API server's strict field validation does (CRD schemas are
    structural: an object with ``properties`` and no ``additionalProperties`` allows nothing else)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@functools.cache
def _crd(plural: str) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRDs are ~1 MB each
    with (KUBERAY_DATA / f"ray.io_{plural}.yaml").open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)  # a safe loader (C or pure Python)


@functools.cache
def crd_schema(plural: str) -> dict[str, Any]:
    """openAPIV3Schema of the storage version of ray.io_<plural>.yaml, made strict."""
    crd = _crd(plural)
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
    # `metadata` is validated by the API server itself, not by the CRD schema.
    schema["properties"]["metadata"] = {"type": "object"}
    return _strict(schema)


def crd_version(plural: str) -> str:
    crd = _crd(plural)
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return f"{crd['spec']['group']}/{version['name']}"


@functools.cache
def _validator(plural: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(crd_schema(plural))


def crd_errors(obj: dict[str, Any]) -> list[str]:
    plural = {"RayService": "rayservices", "RayCluster": "rayclusters"}[obj["kind"]]
    assert obj["apiVersion"] == crd_version(plural), f"{obj['kind']} must use {crd_version(plural)}"
    validator = _validator(plural)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


def ray_start_options() -> set[str]:
    """Every long option of `ray start` in the installed Ray (e.g. ``--num-cpus``)."""
    from ray.scripts.scripts import start

    return {opt for param in start.params for opt in param.opts if opt.startswith("--")}
