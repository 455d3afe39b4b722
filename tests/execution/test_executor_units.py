"""Pure pieces of the executor: diffs, merge patches, selectors, rollout and PDB arithmetic, error
wording, and the catalog ↔ implementation bookkeeping. No cluster, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kubernaut.execution import diff
from kubernaut.execution.actions.relax_pdb import _disruptions
from kubernaut.execution.actions.rollout_restart import _resolve_int_or_percent
from kubernaut.execution.catalog import CATALOG, rbac_rules
from kubernaut.execution.catalog.rbac import PIPELINE_RBAC
from kubernaut.execution.kube import KINDS, Kube, KubeError, KubeUnreachable, Resource
from kubernaut.execution.operations import OPERATIONS
from kubernaut.execution.operations.objects import (
    merge_patch,
    rollout_state,
    selector_matches,
    selector_string,
    with_rv,
)
from kubernaut.execution.operations.resources import _surge, format_quantity
from kubernaut.execution.pipeline import api_failure


def test_every_mutating_action_has_an_operation_and_inverses_are_implemented() -> None:
    assert set(OPERATIONS) == {n for n, s in CATALOG.items() if s.mutates}
    for name, spec in CATALOG.items():
        if not spec.mutates:
            continue
        implements_inverse = type(OPERATIONS[name]).inverse is not type(OPERATIONS["restart_pod"]).inverse
        assert implements_inverse == (spec.inverse is not None), name


def test_rbac_includes_what_the_pipeline_reads() -> None:
    pairs = {(r["apiGroups"][0], res): set(r["verbs"]) for r in rbac_rules() for res in r["resources"]}
    for rule in PIPELINE_RBAC:
        assert set(rule.verbs) <= pairs[(rule.api_group, rule.resource)]
    assert pairs[("", "namespaces")] == {"get"}


def test_diff_strips_noise_and_shows_the_change() -> None:
    before = {"kind": "Deployment", "metadata": {
        "name": "web", "namespace": "shop", "resourceVersion": "1", "generation": 1, "uid": "u",
        "managedFields": [{"manager": "kubectl"}], "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
        "spec": {"replicas": 2}, "status": {"readyReplicas": 2}}
    after = {**before, "metadata": {**before["metadata"], "resourceVersion": "2", "generation": 2},
             "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}
    text = diff.object_diff(before, after)
    assert "--- a/Deployment/shop/web" in text and "+++ b/Deployment/shop/web" in text
    assert "-  replicas: 2" in text and "+  replicas: 3" in text
    for noise in ("resourceVersion", "managedFields", "readyReplicas", "generation", "last-applied"):
        assert noise not in text
    assert "(no change)" in diff.object_diff(before, before)
    assert "+++ /dev/null" in diff.object_diff(before, None)
    assert "--- /dev/null" in diff.object_diff(None, after, "Job/shop/new")


def test_diff_is_bounded() -> None:
    assert len(diff.join(["x" * 100_000])) < diff.MAX_DIFF_CHARS + 100


def test_merge_patch_turns_old_into_new() -> None:
    old = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2], "gone": True}
    new = {"a": 1, "b": {"c": 5}, "l": [3], "added": "x"}
    assert merge_patch(old, new) == {"b": {"c": 5, "d": None}, "l": [3], "gone": None, "added": "x"}


def test_with_rv_sets_the_precondition_without_touching_the_body() -> None:
    body = {"spec": {"replicas": 3}}
    out = with_rv({"metadata": {"resourceVersion": "42"}}, body)
    assert out == {"spec": {"replicas": 3}, "metadata": {"resourceVersion": "42"}} and "metadata" not in body


def test_selectors() -> None:
    selector = {"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "legacy", "operator": "DoesNotExist"}]}
    assert selector_string(selector) == "app=web,tier in (a,b),!legacy"
    assert selector_matches(selector, {"app": "web", "tier": "a"})
    assert not selector_matches(selector, {"app": "web", "tier": "c"})
    assert not selector_matches(selector, {"app": "web", "tier": "a", "legacy": "1"})
    assert selector_matches({}, {"anything": "x"})  # an empty podSelector selects every pod
    assert not selector_matches(None, {"a": "b"})


@pytest.mark.parametrize(("status", "expected"), [
    ({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}, True),
    ({"observedGeneration": 1, "updatedReplicas": 1, "replicas": 3, "availableReplicas": 3}, None),
    ({"observedGeneration": 1, "updatedReplicas": 3, "replicas": 4, "availableReplicas": 3}, None),
    ({"observedGeneration": 0, "updatedReplicas": 3, "replicas": 3, "availableReplicas": 3}, None),
    ({"observedGeneration": 1, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]},
     False),
])
def test_rollout_state_of_a_deployment(status: dict, expected: bool | None) -> None:
    obj = {"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 3}, "status": status}
    assert rollout_state(obj)[0] is expected


def test_rollout_state_of_statefulsets_and_daemonsets() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 2},
           "status": {"observedGeneration": 2, "readyReplicas": 2, "currentRevision": "a", "updateRevision": "b"}}
    assert rollout_state(sts)[0] is None
    sts["status"]["currentRevision"] = "b"
    assert rollout_state(sts)[0] is True
    ds = {"kind": "DaemonSet", "metadata": {"generation": 1}, "status": {
        "observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert rollout_state(ds)[0] is None


def test_pdb_arithmetic_matches_the_disruption_controller() -> None:
    assert _disruptions({"minAvailable": 2}, expected=2, healthy=2) == 0
    assert _disruptions({"maxUnavailable": 1}, expected=2, healthy=2) == 1
    assert _disruptions({"minAvailable": "50%"}, expected=3, healthy=3) == 1  # 50% of 3 rounds up to 2
    assert _disruptions({"maxUnavailable": "34%"}, expected=3, healthy=3) == 2  # 34% of 3 rounds up to 2
    assert _disruptions({"maxUnavailable": 1}, expected=3, healthy=1) == 0


def test_quantities_surge_and_percentages() -> None:
    assert format_quantity(Decimal(192 * 2**20), "memory") == "192Mi"
    assert format_quantity(Decimal(100 * 2**20 + 1), "memory") == "101Mi"  # never rounds a limit down
    assert format_quantity(Decimal("0.2"), "cpu") == "200m"
    assert _surge({"kind": "Deployment", "spec": {"replicas": 4}}) == 1
    assert _surge({"kind": "Deployment", "spec": {"replicas": 4, "strategy": {"type": "Recreate"}}}) == 0
    assert _surge({"kind": "StatefulSet", "spec": {"replicas": 4}}) == 0
    assert _resolve_int_or_percent("25%", 3, round_up=False) == 0
    assert _resolve_int_or_percent("25%", 3, round_up=True) == 1


def test_resource_paths() -> None:
    pdb = Resource("PodDisruptionBudget", "policy", "v1beta1", "poddisruptionbudgets", True)
    assert pdb.api_version == "policy/v1beta1"
    assert pdb.path("shop", "web") == "/apis/policy/v1beta1/namespaces/shop/poddisruptionbudgets/web"
    pod = Resource("Pod", "", "v1", "pods", True)
    assert pod.path("shop", "p", "eviction") == "/api/v1/namespaces/shop/pods/p/eviction"
    assert pod.path(None) == "/api/v1/pods"  # across namespaces
    assert KINDS["CronJob"].versions == ("v1", "v1beta1")  # newest first, chosen by discovery


async def test_an_unreachable_server_raises_kube_unreachable() -> None:
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host, cfg.verify_ssl, cfg.retries = "https://127.0.0.1:1", False, 0
    api = client.ApiClient(cfg)
    try:
        with pytest.raises(KubeUnreachable):
            await Kube(api, timeout_s=2).request("GET", "/api/v1/namespaces")
    finally:
        api.close()


@pytest.mark.parametrize(("error", "status", "retryable", "words"), [
    (KubeError(403, "Forbidden", "user cannot patch"), "failed", False, "forbidden by RBAC"),
    (KubeError(404, "NotFound", "deployments web not found"), "failed", False, "target not found"),
    (KubeError(409, "Conflict", "the object has been modified"), "failed", True, "kept changing"),
    (KubeError(409, "AlreadyExists", "exists"), "failed", False, "conflict: exists"),
    (KubeError(429, "TooManyRequests", "disruption budget"), "failed", True, "PodDisruptionBudget"),
    (KubeError(500, "InternalError", "etcd"), "failed", True, "API server error"),
    (KubeError(422, "Invalid", "bad value"), "failed", False, "rejected the request"),
    (KubeUnreachable("connection refused"), "failed", True, "nothing was changed"),
])
def test_api_failures_are_worded_for_operators(error: Exception, status: str, retryable: bool, words: str) -> None:
    stop = api_failure(error, "execute", sent=False, attempts=3)  # type: ignore[arg-type]
    assert stop.status == status and stop.retryable is retryable and words in stop.message


def test_unreachable_after_a_write_says_the_outcome_is_unknown() -> None:
    stop = api_failure(KubeUnreachable("timeout"), "execute", sent=True, attempts=1)
    assert "may or may not have been applied" in stop.message
