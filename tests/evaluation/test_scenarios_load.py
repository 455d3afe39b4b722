"""Every scenario under evals/scenarios validates; the loader's errors name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubernaut.evaluation.scenario import (
    SCENARIO_CLASSES,
    ScenarioError,
    load_scenario,
    load_scenarios,
    scenario_files,
    substitute,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "evals" / "scenarios"
FILES = scenario_files(SCENARIOS) if SCENARIOS.is_dir() else []


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_file_validates(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.id == path.stem
    assert scenario.class_ in SCENARIO_CLASSES


def test_the_whole_directory_loads_with_unique_ids() -> None:
    scenarios = load_scenarios(SCENARIOS)
    assert len({s.id for s in scenarios}) == len(scenarios) == len(FILES)
    assert any(s.id == "example-oom-at-limit" for s in scenarios)


MINIMAL = {
    "id": "tiny", "title": "t", "class": "fixable",
    "objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}],
    "alerts": [{"labels": {"alertname": "KubePodCrashLooping", "namespace": "{ns}"}}],
    "expect": {"preferred": [{"action": "rollout_restart"}]},
}


def write(tmp_path: Path, data: dict, name: str = "tiny") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_minimal_scenario_and_defaults(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, MINIMAL))
    assert scenario.namespace.managed and not scenario.namespace.system and scenario.nodes == 0
    assert scenario.alerts[0].status == "firing" and scenario.ready is None


@pytest.mark.parametrize(("change", "message"), [
    ({"class": "fixible"}, "tiny.yaml: class:"),
    ({"colour": "red"}, "tiny.yaml: colour: Extra inputs are not permitted"),
    ({"expect": {"preferred": [{"action": "restart_everything"}]}}, "unknown action 'restart_everything'"),
    ({"expect": {"harmful": [{"action": "restart_pod"}]}}, "expect needs preferred or acceptable"),
    ({"id": "other"}, "must equal the file name"),
    ({"alerts": [{"labels": {"namespace": "x"}}]}, "alertname is required"),
    ({"alerts": []}, "alerts:"),
    ({"objects": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}]}, "needs metadata.name"),
    ({"setup": [{"sleep": 1, "cordon": {"node": "{node0}"}}]}, "exactly one of"),
    ({"setup": [{"cordon": {"node": "{node0}"}}]}, "{node0} but the scenario has nodes: 0"),
    ({"setup": [{"wait": {"kind": "Deployment"}}]}, "wait needs kind and name, or pods"),
    ({"setup": [{"node_state": {"node": "n", "state": "Sleepy"}}]}, "setup.0.node_state.state"),
    ({"ready": {"pods": "app=x", "state": "exploded"}}, "ready.state"),
    ({"objects": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "{pod:app=x}"}}]},
     "pod names are known only after setup"),
])
def test_errors_name_file_and_field(tmp_path: Path, change: dict, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(write(tmp_path, {**MINIMAL, **change}))
    assert message in str(info.value)
    assert str(tmp_path / "tiny.yaml") in str(info.value)


def test_directory_errors_are_collected_and_the_glob_filters(tmp_path: Path) -> None:
    write(tmp_path, {**MINIMAL, "id": "good-one"}, "good-one")
    write(tmp_path, {**MINIMAL, "id": "bad-one", "class": "nope"}, "bad-one")
    assert [s.id for s in load_scenarios(tmp_path, "good-*")] == ["good-one"]  # bad-one is not even read
    (tmp_path / "good-one.yml").write_text(yaml.safe_dump({**MINIMAL, "id": "good-one"}))
    with pytest.raises(ScenarioError) as info:
        load_scenarios(tmp_path)
    text = str(info.value)
    assert "bad-one.yaml: class:" in text and "already used" in text
    with pytest.raises(ScenarioError):
        load_scenarios(tmp_path / "missing")


def test_substitutions() -> None:
    pods = {"app=api": "api-1"}
    value = {"n": "{ns}", "list": ["{node1}", "x {pod:app=api} y"], "{ns}": 3, "json": '{"a": 1}', "brace": "{x}"}
    got = substitute(value, "ev-1-s", ["ev-1-1", "ev-1-2"], pods.__getitem__)
    assert got == {"n": "ev-1-s", "list": ["ev-1-2", "x api-1 y"], "ev-1-s": 3, "json": '{"a": 1}', "brace": "{x}"}
    assert substitute("{pod:app=api}", "ns", []) == "{pod:app=api}"  # pods not known yet: left alone
    with pytest.raises(ScenarioError):
        substitute("{node2}", "ns", ["only-one"])
