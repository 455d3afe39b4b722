"""The test harness keeps its own promises: skips are shown, an optional area is built exactly when its tests
run, and no fixture waits longer than pytest-timeout lets the test live."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import harness

ROOT = Path(__file__).resolve().parents[2]


def test_the_suite_lists_skip_reasons() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    (pytest_line,) = [line for line in script.splitlines() if re.search(r"-m pytest\b", line)]
    assert "-rs" in shlex.split(pytest_line) or "-ra" in shlex.split(pytest_line), pytest_line


def test_the_suite_sets_the_vllm_gate_before_preparing() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert script.index("export KUBERNAUT_TEST_VLLM") < script.index("scripts/test-prepare.d/")


@pytest.mark.parametrize("value", [None, "0", "1", "true", ""])
def test_the_vllm_area_is_built_exactly_when_its_tests_run(tmp_path: Path, value: str | None) -> None:
    # The prepare script against a stand-in llm-server.sh that only records what it was asked to build.
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "llm-server.sh").write_text('echo "$1" >> built.txt\n')
    env = {k: v for k, v in os.environ.items() if k != harness.VLLM_VARIABLE}
    if value is not None:
        env[harness.VLLM_VARIABLE] = value
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "test-prepare.d" / "vllm.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    built = (tmp_path / "built.txt").read_text().split() if (tmp_path / "built.txt").exists() else []
    runs = harness.vllm_enabled(env)
    assert bool(built) == runs, (value, built, runs)
    if runs:
        assert built == ["vllm-build", "embeddings-build"]


def test_the_vllm_tests_use_the_shared_gate() -> None:
    for name in ("analysis/test_llm_vllm.py", "intelligence/test_embeddings_extra.py"):
        text = (ROOT / "tests" / name).read_text()
        assert "requires_vllm" in text and "KUBERNAUT_TEST_VLLM\") != " not in text, name


class _Config:
    def __init__(self, option: Any = None, ini: Any = "") -> None:
        self.option, self.ini = option, ini

    def getoption(self, name: str, default: Any = None) -> Any:
        assert name == "timeout"
        return self.option

    def getini(self, name: str) -> Any:
        assert name == "timeout"
        return self.ini


def test_a_fixture_waits_less_than_pytest_timeout_lets_its_test_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_TIMEOUT", raising=False)
    assert harness.fixture_budget_s(_Config(ini="600"), 1500) == 600 - harness.SETUP_MARGIN_S
    assert harness.fixture_budget_s(_Config(option=100.0, ini="600"), 1500) == 100 - harness.SETUP_MARGIN_S
    assert harness.fixture_budget_s(_Config(ini="600"), 60) == 60
    assert harness.fixture_budget_s(_Config(), 1500) == 1500  # no pytest-timeout: the fixture's own limit
    monkeypatch.setenv("PYTEST_TIMEOUT", "300")
    assert harness.fixture_budget_s(_Config(), 1500) == 300 - harness.SETUP_MARGIN_S


def test_this_run_caps_the_session_fixtures_below_its_timeout(pytestconfig: pytest.Config) -> None:
    from tests.plugins import kube_testenv, llm_server

    limit = harness.timeout_limit_s(pytestconfig)
    for wanted in (kube_testenv.UP_TIMEOUT_S, llm_server.BUILD_TIMEOUT_S):
        budget = harness.fixture_budget_s(pytestconfig, wanted)
        assert limit <= 0 or budget < limit


def test_long_waits_in_test_modules_come_with_a_longer_timeout_mark() -> None:
    from tests.analysis import test_llm_vllm
    from tests.intelligence import test_embeddings_extra

    def marked(module: Any) -> float:
        (mark,) = [m for m in module.pytestmark if m.name == "timeout"]
        return float(mark.args[0])

    assert marked(test_llm_vllm) > test_llm_vllm.UP_TIMEOUT_S + test_llm_vllm.DOWN_TIMEOUT_S
    assert marked(test_embeddings_extra) > test_embeddings_extra.BUILD_TIMEOUT_S + test_embeddings_extra.PROBE_TIMEOUT_S
    # No other test module or plugin waits on a subprocess longer than pytest-timeout without saying so.
    limit = 600
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text()
        if "pytest.mark.timeout(" in text:
            continue
        long_waits = [int(n) for n in re.findall(r"timeout=(\d+)", text) if int(n) > limit]
        assert not long_waits, f"{path.name}: subprocess/fixture timeouts {long_waits} exceed pytest-timeout's {limit}s"
