"""The RayService (both variants) and the dev RayCluster against the KubeRay CRDs and KubeRay's expectations."""

from __future__ import annotations

import copy

import pytest
import ray

from tests.deploy.manifests import (
    CLUSTER,
    cluster_spec,
    crd_errors,
    load_docs,
    pod_templates,
    ray_container,
    ray_start_options,
    rayservice,
    serve_config_of,
)

VARIANTS = ("cpu", "llm")


def _dev_raycluster() -> dict:
    (doc,) = load_docs(CLUSTER / "dev" / "raycluster.yaml")
    return doc


@pytest.mark.parametrize("variant", VARIANTS)
def test_rayservice_validates_against_the_kuberay_crd(variant: str) -> None:
    assert crd_errors(rayservice(variant)) == []


def test_dev_raycluster_validates_against_the_kuberay_crd() -> None:
    assert crd_errors(_dev_raycluster()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s["spec"]["rayClusterConfig"].update(enableInTreeAutoScaling=True), "enableInTreeAutoScaling"),
        (lambda s: s["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
         "num-cpus"),
        (lambda s: s["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].pop("groupName"), "groupName"),
        (lambda s: s["spec"]["rayClusterConfig"]["gcsFaultToleranceOptions"].update(redisPasword="x"),
         "redisPasword"),
        (lambda s: s["spec"]["rayClusterConfig"]["autoscalerOptions"].update(upscalingMode="Fast"), "Fast"),
        (lambda s: s["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
         .update(resource={}), "resource"),
    ],
    ids=["unknown-field", "int-ray-start-param", "missing-group-name", "typo-in-gcs-ft", "bad-enum",
         "typo-in-pod-template"],
)
def test_crd_validation_rejects_broken_manifests(mutate, expected: str) -> None:
    """The validation has teeth: unknown fields, wrong types, missing required fields, bad enums."""
    broken = copy.deepcopy(rayservice("cpu"))
    mutate(broken)
    errors = crd_errors(broken)
    assert errors and any(expected in e for e in errors), errors


@pytest.mark.parametrize("variant", VARIANTS)
def test_head_runs_no_replicas_and_cluster_is_fault_tolerant_and_autoscaled(variant: str) -> None:
    service = rayservice(variant)
    spec = cluster_spec(service)
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    assert service["spec"]["excludeHeadPodFromServeSvc"] is True
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["securityContext"]["allowPrivilegeEscalation"] is False
    ft = spec["gcsFaultToleranceOptions"]
    assert ft["redisAddress"].startswith("kubernaut-redis.kubernaut.svc")
    assert set(ft["redisPassword"]) == {"valueFrom"}, "the Redis password must come from a Secret"
    assert ft["redisPassword"]["valueFrom"]["secretKeyRef"] == {"name": "kubernaut-redis", "key": "password"}
    assert spec["authOptions"] == {"mode": "token"}
    assert service["spec"]["upgradeStrategy"]["type"] == "NewCluster"


@pytest.mark.parametrize("variant", VARIANTS)
def test_ray_version_matches_the_installed_ray(variant: str) -> None:
    spec = cluster_spec(rayservice(variant))
    assert spec["rayVersion"].split(".")[:2] == ray.__version__.split(".")[:2]
    # KubeRay injects HTTP health probes for Ray >= 2.53 only.
    assert tuple(int(x) for x in spec["rayVersion"].split(".")[:2]) >= (2, 53)


WORKER_GROUPS = ["gateway", "core", "analysis", "executor", "notifications"]


def test_cpu_variant_has_one_autoscaled_group_per_trust_level_and_no_gpu() -> None:
    """Layout changed on purpose (issue 12, least privilege): one `cpu` group running everything as the
    executor became one group per ServiceAccount; the ingress keeps two pods at least."""
    groups = {g["groupName"]: g for g in cluster_spec(rayservice("cpu"))["workerGroupSpecs"]}
    assert list(groups) == WORKER_GROUPS
    assert 2 <= groups["gateway"]["minReplicas"] <= groups["gateway"]["replicas"] < groups["gateway"]["maxReplicas"]
    for name, group in groups.items():
        assert 1 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
    assert "llm" not in [a["name"] for a in serve_config_of(rayservice("cpu"))["applications"]]
    for _, template in pod_templates(rayservice("cpu")):
        assert "nvidia.com/gpu" not in ray_container(template)["resources"]["limits"]
        assert not ray_container(template)["image"].endswith("-llm")


def test_llm_variant_adds_a_gpu_group_and_the_llm_application() -> None:
    service = rayservice("llm")
    groups = {g["groupName"]: g for g in cluster_spec(service)["workerGroupSpecs"]}
    assert list(groups) == [*WORKER_GROUPS, "gpu"]
    gpu = groups["gpu"]
    assert gpu["minReplicas"] == 0 < gpu["maxReplicas"], "GPU nodes only when the llm app asks for them"
    container = ray_container(gpu["template"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]
    tolerations = gpu["template"]["spec"]["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    # Every group runs the LLM image: any replica may be placed on any node.
    assert {ray_container(t)["image"] for _, t in pod_templates(service)} == {container["image"]}
    assert container["image"].endswith("-llm")

    apps = {a["name"]: a for a in serve_config_of(service)["applications"]}
    llm = apps["llm"]
    assert llm["import_path"] == "ray.serve.llm:build_openai_app"
    (llm_config,) = llm["args"]["llm_configs"]
    analysis = apps["kubernaut"]["args"]["analysis"]
    # The analysis calls the llm app through its own node's Serve proxy, under the app's route prefix.
    assert analysis["llm_base_url"].endswith(f":8000{llm['route_prefix']}/v1")
    assert analysis["llm_model"] == llm_config["model_loading_config"]["model_id"]
    assert analysis["llm_provider"] == "vllm"


@pytest.mark.parametrize("variant", VARIANTS)
def test_ray_containers_follow_kuberay_guidance(variant: str) -> None:
    for group, template in pod_templates(rayservice(variant)):
        container = ray_container(template)
        resources = container["resources"]
        assert resources["requests"] == resources["limits"], f"{group}: KubeRay sizes Ray from limits"
        assert {"cpu", "memory"} <= set(resources["limits"]), group
        # KubeRay injects the probes it expects (raylet/GCS health, Serve proxy on workers); ours would
        # replace them and break RayService's health tracking.
        assert "livenessProbe" not in container and "readinessProbe" not in container, group
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == 8080 and ports["serve"] == 8000, group
        sc = container["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False, group
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        if group != "head":
            assert container["lifecycle"]["preStop"]["exec"]["command"][-1] == "ray stop", group


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_are_referenced_never_inlined(variant: str) -> None:
    """Per group now (issue 12): a required secret is required where it is mounted; which group mounts
    which secret is tests/deploy/test_least_privilege.py's."""
    mounted = set()
    for group, template in pod_templates(rayservice(variant)):
        env = {e["name"]: e for e in ray_container(template)["env"]}
        for name in ("DATABASE_URL", "KUBERNAUT_GATEWAY__TOKENS", "KUBERNAUT_STORAGE__AUDIT__KEYS"):
            if name in env:
                mounted.add(name)
                ref = env[name]["valueFrom"]["secretKeyRef"]
                assert not ref.get("optional"), f"{group}: {name} is required (no silent embedded DB, no open API)"
        for name in ("KUBERNAUT_ANALYSIS__LLM_API_KEY", "KUBERNAUT_NOTIFICATIONS__URLS"):
            if name in env:
                mounted.add(name)
                assert env[name]["valueFrom"]["secretKeyRef"]["optional"] is True
        for entry in env.values():
            if any(word in entry["name"] for word in ("TOKEN", "KEY", "PASSWORD", "URL", "DSN")):
                assert "value" not in entry or entry["name"] in ("HF_HOME", "KUBERNAUT_STORAGE__AUDIT__LOCAL_KEY"), (
                    f"{group}: {entry['name']} inlined")
    assert mounted == {"DATABASE_URL", "KUBERNAUT_GATEWAY__TOKENS", "KUBERNAUT_STORAGE__AUDIT__KEYS",
                       "KUBERNAUT_ANALYSIS__LLM_API_KEY", "KUBERNAUT_NOTIFICATIONS__URLS"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_service_accounts_per_role(variant: str) -> None:
    """Changed on purpose (issue 12): every worker ran as kubernaut-executor; now one account per group."""
    accounts = {group: t["spec"]["serviceAccountName"] for group, t in pod_templates(rayservice(variant))}
    expected = {"head": "kubernaut-ray-head", "gateway": "kubernaut-gateway", "core": "kubernaut-reader",
                "analysis": "kubernaut-reader", "executor": "kubernaut-executor",
                "notifications": "kubernaut-notifications"}
    if variant == "llm":
        expected["gpu"] = "kubernaut-llm"
    assert accounts == expected


@pytest.mark.parametrize("obj", ["cpu", "llm", "dev"])
def test_ray_start_params_are_real_ray_start_options(obj: str) -> None:
    """KubeRay turns rayStartParams into `ray start --key=value`: every key must be a real option."""
    doc = _dev_raycluster() if obj == "dev" else rayservice(obj)
    options = ray_start_options()
    spec = cluster_spec(doc)
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    for group in groups:
        for key in group.get("rayStartParams", {}):
            assert f"--{key}" in options, f"`ray start --{key}` does not exist in Ray {ray.__version__}"
