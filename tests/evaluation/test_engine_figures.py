"""The figures `kubernaut eval` reports per engine: latency quantiles, how often the LLM decided itself, tokens
and cost per incident, and the rules-vs-LLM table of ``--engine both``."""

from __future__ import annotations

import io
from datetime import datetime, timezone
from typing import Any

import pytest
from rich.console import Console

from kubernaut.evaluation.report import json_document, markdown, print_report, summarize
from kubernaut.evaluation.runner import RunOptions, RunResult, ScenarioRecord, engines


def record(scenario: str, run_engine: str, grade: str, *, engine: str | None = None, seconds: float = 1.0,
           llm: dict[str, Any] | None = None, error: str | None = None) -> ScenarioRecord:
    analysis = None if error else {"action": "notify_only", "engine": engine or run_engine,
                                   **({"llm": llm} if llm is not None else {})}
    return ScenarioRecord(id=scenario, title=scenario, scenario_class="escalate", namespace="ns", grade=grade,
                          action=None if error else "notify_only", target=None if error else {"kind": "Pod",
                                                                                               "name": "p"},
                          engine=None if error else (engine or run_engine), analysis=analysis, analysis_s=seconds,
                          run_engine=run_engine, error=error)


def usage(prompt: int, completion: int, cost: float | None = 0.0) -> dict[str, Any]:
    return {"provider": "compatible", "model": "m", "prompt_tokens": prompt, "completion_tokens": completion,
            "cost_usd": cost, "calls": 1}


def run(records: list[ScenarioRecord], engine: str) -> RunResult:
    return RunResult(run_id="r1", started_at=datetime.now(timezone.utc), seconds=3.0, engine=engine, mode="test",
                     kubeconfig="k", concurrency=1, records=records)


def test_llm_figures_count_fallbacks_tokens_cost_and_latency_quantiles() -> None:
    records = [record(f"s{i}", "llm", "acceptable", engine="llm:m", seconds=float(i), llm=usage(1000, 100, 0.001))
               for i in range(1, 10)]
    records.append(record("s10", "llm", "preferred", engine="rules", seconds=10.0, llm=usage(0, 0, 0.0)))
    summary = summarize(records)
    assert (summary.llm_asked, summary.llm_decided) == (10, 9)
    assert summary.tokens_per_incident == pytest.approx(9 * 1100 / 10)
    assert summary.cost_per_incident == pytest.approx(0.009 / 10)
    assert (summary.latency_s(0.5), summary.latency_s(0.95)) == (5.0, 10.0)
    assert summary.figures_line("llm") == ("FIGURES engine=llm p50=5.00s p95=10.00s llm_decided=9/10 "
                                           "tokens_per_incident=990 cost_per_incident=0.000900")


def test_unknown_price_makes_the_cost_unknown_and_rules_runs_show_latency_only() -> None:
    summary = summarize([record("a", "llm", "acceptable", engine="llm:gpt", llm=usage(10, 5, None)),
                         record("b", "llm", "acceptable", engine="llm:gpt", llm=usage(10, 5, 0.01))])
    assert summary.cost_per_incident is None and summary.figures_line("llm").endswith("cost_per_incident=?")
    rules = summarize([record("a", "rules", "preferred", seconds=0.2), record("b", "rules", "error", error="x")])
    assert rules.figures_line("rules") == "FIGURES engine=rules p50=0.20s p95=0.20s"


def test_both_prints_each_engine_and_the_answers_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    records = [record("s1", "rules", "preferred", seconds=0.1), record("s2", "rules", "acceptable", seconds=0.1),
               record("s1", "llm", "harmful", engine="llm:m", seconds=2.0, llm=usage(900, 80)),
               record("s2", "llm", "acceptable", engine="rules", seconds=3.0, llm=usage(0, 0))]
    out = io.StringIO()
    summaries = print_report(run(records, "both"), Console(file=out, width=200))
    assert set(summaries) == {"rules", "llm"} and summaries["llm"].harmful == 1 and summaries["rules"].harmful == 0
    table = out.getvalue()
    assert "rules vs LLM" in table and "(rules fallback)" in table and "1 scenario(s)" not in table
    lines = capsys.readouterr().out.splitlines()
    assert "RESULT engine=rules scenarios=2 acceptable=2 preferred=1 harmful=0" in lines[0]
    assert lines[1] == "FIGURES engine=rules p50=0.10s p95=0.10s"
    assert "RESULT engine=llm scenarios=2 acceptable=1 preferred=0 harmful=1" in lines[2]
    assert lines[3].startswith("FIGURES engine=llm p50=2.00s p95=3.00s llm_decided=1/2 tokens_per_incident=490")
    document = json_document(run(records, "both"))
    assert document["summary"]["harmful"] == 1 and document["summary"]["llm_decided"] == 1  # the LLM's, measured
    assert document["engines"]["rules"]["latency_p50_s"] == 0.1
    assert [(r["id"], r["run_engine"]) for r in document["records"]] == [
        ("s1", "llm"), ("s1", "rules"), ("s2", "llm"), ("s2", "rules")]
    assert "FIGURES engine=llm" in markdown(run(records, "both"))


def test_single_engine_keeps_the_plain_result_line(capsys: pytest.CaptureFixture[str]) -> None:
    print_report(run([record("s1", "rules", "preferred")], "rules"), Console(file=io.StringIO()))
    assert capsys.readouterr().out.splitlines()[0].startswith("RESULT scenarios=1 acceptable=1")


def test_both_means_rules_then_llm_and_needs_the_in_process_analysis() -> None:
    from kubernaut.evaluation.runner import EvalConfigError, make_backend

    assert engines(RunOptions(kubeconfig="k", engine="both")) == ["rules", "llm"]
    with pytest.raises(EvalConfigError, match="in-process"):
        make_backend(RunOptions(kubeconfig="k", engine="both", url="http://x"))
