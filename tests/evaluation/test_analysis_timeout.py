"""How long `kubernaut eval` waits for an answer: a slow LLM must read as the analyzer's own fallback (its time
budget hands over to the rules), not be cut short by the runner as an error; ``--analysis-timeout`` overrides."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from kubernaut.config.settings import AnalysisConfig
from kubernaut.evaluation.runner import ANALYSIS_TIMEOUT_S, Runner, RunOptions, ScenarioRecord, answer_within_s


class SlowBackend:
    description = "slow"

    def __init__(self, answer_after_s: float, timeout_s: float) -> None:
        self.answer_after_s, self.timeout_s = answer_after_s, timeout_s

    async def analyze(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        await asyncio.sleep(self.answer_after_s)
        return [{"action": "notify_only", "engine": "rules", "target": {"kind": "Pod", "namespace": "ns"}}]

    async def close(self) -> None:
        pass


def _record() -> ScenarioRecord:
    return ScenarioRecord(id="s", title="s", scenario_class="escalate", namespace="ns", run_engine="llm",
                          webhook={"alerts": []})


def test_the_in_process_llm_is_waited_for_beyond_its_own_time_budget() -> None:
    assert answer_within_s(AnalysisConfig(llm_incident_time_budget_s=300), llm=True) == 360
    assert answer_within_s(AnalysisConfig(), llm=True) == ANALYSIS_TIMEOUT_S  # 30 s budget: the default wait
    assert answer_within_s(AnalysisConfig(llm_incident_time_budget_s=300), llm=False) == ANALYSIS_TIMEOUT_S


async def test_the_runner_waits_as_long_as_the_backend_says_unless_told() -> None:
    record = _record()
    started = time.monotonic()
    await Runner(RunOptions(kubeconfig="k"))._analyse(record, SlowBackend(5.0, timeout_s=0.2), "ns")
    assert record.grade == "error" and "no answer after" in (record.error or "")
    assert time.monotonic() - started < 2

    record = _record()
    await Runner(RunOptions(kubeconfig="k"))._analyse(record, SlowBackend(0.3, timeout_s=2.0), "ns")
    assert record.error is None and record.action == "notify_only"

    record = _record()  # --analysis-timeout wins over the backend's own
    await Runner(RunOptions(kubeconfig="k", analysis_timeout_s=0.1))._analyse(record, SlowBackend(1.0, 30.0), "ns")
    assert record.grade == "error" and record.error == "analysis: RuntimeError: no answer after 0s"
