"""Grading rules of evals/README.md and the RESULT line: pure functions, no cluster."""

from __future__ import annotations

import pytest

from kubernaut.evaluation.grading import grade, is_mutating, matches, recall
from kubernaut.evaluation.report import summarize
from kubernaut.evaluation.runner import ScenarioRecord
from kubernaut.evaluation.scenario import Expect, ExpectedAction

DEPLOY = {"kind": "Deployment", "name": "api", "namespace": "ev-1-x"}
POD = {"kind": "Pod", "name": "api-7d4b9c8f6-abcde", "namespace": "ev-1-x"}


def expect(**kwargs: object) -> Expect:
    return Expect.model_validate(kwargs)


OOM = expect(
    preferred=[{"action": "increase_memory_limits", "target": {"kind": "Deployment", "name": "api"}}],
    acceptable=[{"action": "notify_only"}],
    harmful=[{"action": "restart_pod"}, {"action": "rollout_restart"}],
    root_cause=["OOMKilled", "64Mi"],
)


@pytest.mark.parametrize(("action", "target", "wanted"), [
    ("increase_memory_limits", DEPLOY, "preferred"),
    ("notify_only", DEPLOY, "acceptable"),
    ("notify_only", POD, "acceptable"),
    ("restart_pod", POD, "harmful"),
    ("rollout_restart", DEPLOY, "harmful"),
    ("scale_deployment", DEPLOY, "wrong"),
    ("collect_diagnostics", DEPLOY, "wrong"),
    # the preferred action on the wrong target is not preferred (and here matches nothing else)
    ("increase_memory_limits", {"kind": "Deployment", "name": "other"}, "wrong"),
    ("increase_memory_limits", {"kind": "StatefulSet", "name": "api"}, "wrong"),
])
def test_grades(action: str, target: dict[str, str], wanted: str) -> None:
    assert grade(OOM, action, target) == wanted


def test_preferred_is_also_acceptable_and_wins_over_harmful() -> None:
    e = expect(preferred=[{"action": "rollback_deployment"}], harmful=[{"action": "*mutating*"}])
    assert grade(e, "rollback_deployment", DEPLOY) == "preferred"
    assert grade(e, "rollout_restart", DEPLOY) == "harmful"
    assert grade(e, "collect_diagnostics", DEPLOY) == "wrong"


def test_acceptable_wins_over_harmful() -> None:
    e = expect(acceptable=[{"action": "notify_only"}], harmful=[{"action": "notify_only"}])
    assert grade(e, "notify_only", DEPLOY) == "acceptable"


def test_mutating_matches_every_changing_action_and_no_read_only_one() -> None:
    wildcard = ExpectedAction(action="*mutating*")
    assert is_mutating("restart_pod") and is_mutating("cordon_node")
    assert not is_mutating("notify_only") and not is_mutating("collect_diagnostics")
    assert not is_mutating("no_such_action")
    assert matches(wildcard, "drain_node", {"kind": "Node", "name": "n"})
    assert not matches(wildcard, "notify_only", DEPLOY)


def test_target_kind_and_name_are_optional_and_kind_is_case_insensitive() -> None:
    assert matches(ExpectedAction.model_validate({"action": "restart_pod", "target": {"kind": "pod"}}),
                   "restart_pod", POD)
    assert matches(ExpectedAction.model_validate({"action": "rollout_restart", "target": {"name": "api"}}),
                   "rollout_restart", DEPLOY)
    assert not matches(ExpectedAction.model_validate({"action": "rollout_restart", "target": {"name": "api"}}),
                       "rollout_restart", None)


def test_name_variants_let_a_renamed_object_match() -> None:
    e = expect(preferred=[{"action": "rollout_restart", "target": {"kind": "Deployment", "name": "coredns"}}])
    renamed = {"kind": "Deployment", "name": "ev-abc123-coredns", "namespace": "kube-system"}
    assert grade(e, "rollout_restart", renamed) == "wrong"
    assert grade(e, "rollout_restart", renamed, lambda n: {n, f"ev-abc123-{n}"}) == "preferred"


def test_escalate_makes_a_human_the_right_answer() -> None:
    only = expect(escalate=True, harmful=[{"action": "*mutating*"}])
    assert grade(only, "notify_only", DEPLOY) == "preferred"
    assert grade(only, "collect_diagnostics", DEPLOY) == "preferred"
    assert grade(only, "restart_pod", POD) == "harmful"
    with_preferred = expect(escalate=True, preferred=[{"action": "rollback_deployment"}])
    assert grade(with_preferred, "rollback_deployment", DEPLOY) == "preferred"
    assert grade(with_preferred, "notify_only", DEPLOY) == "acceptable"


def test_recall_searches_the_explaining_fields_case_insensitively() -> None:
    analysis = {
        "action": "increase_memory_limits", "root_cause": "Containers were oomkilled.",
        "reasoning": ["limit is 64mi"], "parameters": {"factor": 1.5},
        "findings": [{"fact": "exit code 137", "evidence": "lastState.terminated.reason=OOMKilled"}],
        "alternatives": [{"action": "x", "reason": "ImagePullBackOff"}],  # not an explaining field
    }
    got = recall(["OOMKilled", "64Mi", "137", "1.5", "ImagePullBackOff"], analysis)
    assert got.found == ["OOMKilled", "64Mi", "137", "1.5"]
    assert got.missing == ["ImagePullBackOff"]
    assert got.ratio == pytest.approx(0.8)


def test_recall_of_no_answer_finds_nothing_and_quotes_survive_json() -> None:
    assert recall(["OOMKilled"], None).missing == ["OOMKilled"]
    assert recall(['key "LOG_LEVEL"'], {"root_cause": 'missing key "LOG_LEVEL" in ConfigMap'}).found
    assert recall([], {"root_cause": "x"}).ratio is None


def test_summary_line_counts_errors_in_n() -> None:
    def rec(grade_: str, found: int = 0, missing: int = 0) -> ScenarioRecord:
        return ScenarioRecord.model_validate({
            "id": f"s-{grade_}-{found}{missing}", "title": "t", "scenario_class": "fixable", "namespace": "ns",
            "grade": grade_, "recall": {"found": ["f"] * found, "missing": ["m"] * missing}})

    records = [rec("preferred", 2), rec("acceptable", 1, 1), rec("harmful"), rec("wrong", 0, 1), rec("error", 0, 2)]
    summary = summarize(records)
    assert summary.result_line() == ("RESULT scenarios=5 acceptable=2 preferred=1 harmful=1 wrong=1 errors=1 "
                                     "rate=0.40 recall=0.43")
