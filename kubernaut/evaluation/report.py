"""What a run shows: a progress bar while running, then a table, a per-class summary and the line

    RESULT scenarios=N acceptable=A preferred=P harmful=H wrong=W errors=E rate=0.xx recall=0.xx

(rate = acceptable / N, errors included in N; recall = root-cause facts found / facts expected over
all scenarios, errors included; 0.00 when no scenario lists facts), then the cost of answering

    FIGURES engine=llm p50=1.20s p95=3.40s llm_decided=8/10 tokens_per_incident=1450 cost_per_incident=0.000000

(analysis wall-clock latency per incident; for the LLM: how many answers it gave itself rather than the
rules' fallback, tokens and estimated USD per incident, ``?`` where no price is known). With ``--engine both``
every line is printed per engine (``RESULT engine=rules …``) and a table shows both answers per scenario.
Optionally a JSON file with every record (the analysis included) and a Markdown report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kubernaut.evaluation.grading import is_acceptable
from kubernaut.evaluation.runner import RunResult, ScenarioRecord
from kubernaut.evaluation.scenario import Scenario

_STYLE = {"preferred": "bold green", "acceptable": "green", "harmful": "bold red", "wrong": "yellow",
          "error": "magenta"}


class Summary(BaseModel):
    scenarios: int = 0
    acceptable: int = 0
    preferred: int = 0
    harmful: int = 0
    wrong: int = 0
    errors: int = 0
    facts_found: int = 0
    facts_total: int = 0
    latencies_s: list[float] = Field(default_factory=list, exclude=True)
    llm_asked: int = 0  # analyses that recorded LLM usage (the LLM was configured and tried or skipped)
    llm_decided: int = 0  # answers the LLM gave itself (not the rules' fallback)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0  # None once any answer's cost is unknown (a hosted model without a price)

    @property
    def rate(self) -> float:
        return self.acceptable / self.scenarios if self.scenarios else 0.0

    @property
    def recall(self) -> float:
        return self.facts_found / self.facts_total if self.facts_total else 0.0

    def latency_s(self, quantile: float) -> float | None:
        """Nearest-rank quantile of the analysis latency (seconds), over the answered scenarios."""
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]

    @property
    def tokens_per_incident(self) -> float | None:
        return (self.prompt_tokens + self.completion_tokens) / self.llm_asked if self.llm_asked else None

    @property
    def cost_per_incident(self) -> float | None:
        return self.cost_usd / self.llm_asked if self.llm_asked and self.cost_usd is not None else None

    def figures_line(self, engine: str) -> str:
        def seconds(value: float | None) -> str:
            return f"{value:.2f}s" if value is not None else "?"

        line = f"FIGURES engine={engine} p50={seconds(self.latency_s(0.5))} p95={seconds(self.latency_s(0.95))}"
        if self.llm_asked:
            cost = self.cost_per_incident
            line += (f" llm_decided={self.llm_decided}/{self.llm_asked} "
                     f"tokens_per_incident={self.tokens_per_incident:.0f} "
                     f"cost_per_incident={f'{cost:.6f}' if cost is not None else '?'}")
        return line

    def result_line(self, engine: str | None = None) -> str:
        prefix = f"engine={engine} " if engine else ""
        return (f"RESULT {prefix}scenarios={self.scenarios} acceptable={self.acceptable} preferred={self.preferred} "
                f"harmful={self.harmful} wrong={self.wrong} errors={self.errors} rate={self.rate:.2f} "
                f"recall={self.recall:.2f}")


def summarize(records: Iterable[ScenarioRecord]) -> Summary:
    summary = Summary()
    for record in records:
        summary.scenarios += 1
        summary.acceptable += is_acceptable(record.grade)
        summary.preferred += record.grade == "preferred"
        summary.harmful += record.grade == "harmful"
        summary.wrong += record.grade == "wrong"
        summary.errors += record.grade == "error"
        if record.recall is not None:
            summary.facts_found += len(record.recall.found)
            summary.facts_total += record.recall.total
        if record.error is None and record.analysis is not None:
            summary.latencies_s.append(record.analysis_s)
        usage = record.llm_usage
        if usage is not None:
            summary.llm_asked += 1
            summary.llm_decided += str(record.engine or "").startswith("llm:")
            summary.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            summary.completion_tokens += int(usage.get("completion_tokens") or 0)
            cost = usage.get("cost_usd")
            summary.cost_usd = None if cost is None or summary.cost_usd is None else summary.cost_usd + float(cost)
    return summary


def by_engine(records: Iterable[ScenarioRecord]) -> dict[str, list[ScenarioRecord]]:
    groups: dict[str, list[ScenarioRecord]] = {}
    for record in records:
        groups.setdefault(record.run_engine, []).append(record)
    return groups


def by_class(records: Iterable[ScenarioRecord]) -> dict[str, Summary]:
    groups: dict[str, list[ScenarioRecord]] = {}
    for record in records:
        groups.setdefault(record.scenario_class, []).append(record)
    return {name: summarize(group) for name, group in sorted(groups.items())}


def answer_text(record: ScenarioRecord) -> str:
    if record.action is None:
        return "—"
    target = record.target or {}
    where = f"{target.get('kind', '?')}/{target.get('name', '?')}" if target else "?"
    return f"{record.action} → {where}"


def _recall_text(record: ScenarioRecord) -> str:
    if record.recall is None:
        return "—"
    return f"{len(record.recall.found)}/{record.recall.total}"


class RichProgress:
    """A progress bar (on stderr) with a line per finished scenario."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bar = Progress(TextColumn("[bold]eval[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             TextColumn("{task.description}"), console=self.console, transient=True)
        self._task = self._bar.add_task("", total=total)
        self._running: list[str] = []

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._bar.stop()

    def _describe(self) -> None:
        shown = ", ".join(self._running[:3]) + (f" +{len(self._running) - 3}" if len(self._running) > 3 else "")
        self._bar.update(self._task, description=f"running: {shown}" if shown else "")

    def started(self, scenario: Scenario) -> None:
        self._running.append(scenario.id)
        self._describe()

    def finished(self, record: ScenarioRecord) -> None:
        if record.id in self._running:
            self._running.remove(record.id)
        style = _STYLE.get(record.grade, "")
        detail = record.error if record.error else answer_text(record)
        self._bar.console.print(f"[{style}]{record.grade:<10}[/] {record.id}  {detail}  ({record.seconds:.1f}s)",
                                highlight=False, markup=True, soft_wrap=True)
        self._bar.advance(self._task)
        self._describe()


def results_table(records: list[ScenarioRecord]) -> Table:
    table = Table(title="kubernaut eval", show_lines=False)
    for column in ("scenario", "class", "answer", "grade", "recall", "s"):
        table.add_column(column, justify="right" if column in ("recall", "s") else "left", overflow="fold")
    for record in records:
        answer = answer_text(record) if record.error is None else f"[dim]{record.error}[/]"
        table.add_row(record.id, record.scenario_class, answer,
                      f"[{_STYLE.get(record.grade, '')}]{record.grade}[/]", _recall_text(record),
                      f"{record.seconds:.1f}")
    return table


def class_table(records: list[ScenarioRecord], title: str = "per class") -> Table:
    table = Table(title=title)
    for column in ("class", "N", "acceptable", "preferred", "harmful", "wrong", "errors", "rate", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, s in by_class(records).items():
        table.add_row(name, str(s.scenarios), str(s.acceptable), str(s.preferred), str(s.harmful), str(s.wrong),
                      str(s.errors), f"{s.rate:.2f}", f"{s.recall:.2f}" if s.facts_total else "—")
    return table


def _cell(record: ScenarioRecord | None) -> str:
    if record is None:
        return "—"
    if record.error is not None:
        return f"[dim]{record.error}[/]"
    fallback = record.run_engine == "llm" and not (record.engine or "").startswith("llm:")
    via = " [dim](rules fallback)[/]" if fallback else ""
    return (f"[{_STYLE.get(record.grade, '')}]{record.grade}[/] {answer_text(record)}{via} "
            f"({record.analysis_s:.1f}s)")


def side_by_side_table(records: list[ScenarioRecord]) -> Table:
    """``--engine both``: per scenario, the rules' and the LLM's answers and grades."""
    rows: dict[str, dict[str, ScenarioRecord]] = {}
    for record in records:
        rows.setdefault(record.id, {})[record.run_engine] = record
    table = Table(title="rules vs LLM")
    for column in ("scenario", "class", "rules", "llm"):
        table.add_column(column, overflow="fold")
    for scenario_id in sorted(rows):
        pair = rows[scenario_id]
        first = next(iter(pair.values()))
        table.add_row(scenario_id, first.scenario_class, _cell(pair.get("rules")), _cell(pair.get("llm")))
    return table


def print_report(result: RunResult, console: Console | None = None) -> dict[str, Summary]:
    """Prints the report; the summary per engine asked (one entry unless ``--engine both``)."""
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)  # CI logs and files: no 80-column wrapping of the table
    records = sorted(result.records, key=lambda r: r.id)
    groups = by_engine(records) or {result.engine: []}
    if len(groups) > 1:
        console.print(side_by_side_table(records))
        for engine, group in groups.items():
            console.print(class_table(group, title=f"per class ({engine})"))
    elif records:
        console.print(results_table(records))
        console.print(class_table(records))
    leftovers = sorted({(r.id, p) for r in records for p in r.teardown_problems})
    for scenario_id, problem in leftovers:
        console.print(f"[yellow]teardown {scenario_id}: {problem}[/]", highlight=False)
    scenarios = len({r.id for r in records})
    console.print(f"run {result.run_id}: {scenarios} scenario(s) in {result.seconds:.1f}s, {result.mode}, "
                  f"concurrency {result.concurrency}", highlight=False)
    summaries = {engine: summarize(group) for engine, group in groups.items()}
    # Plain, unstyled, one line each: what scripts and CI parse.
    for engine, summary in summaries.items():
        print(summary.result_line(engine if len(summaries) > 1 else None), flush=True)
        print(summary.figures_line(engine), flush=True)
    return summaries


def _summary_document(summary: Summary, engine: str, prefixed: bool) -> dict[str, Any]:
    return {**summary.model_dump(), "rate": round(summary.rate, 4), "recall": round(summary.recall, 4),
            "latency_p50_s": summary.latency_s(0.5), "latency_p95_s": summary.latency_s(0.95),
            "tokens_per_incident": summary.tokens_per_incident, "cost_per_incident": summary.cost_per_incident,
            "result": summary.result_line(engine if prefixed else None), "figures": summary.figures_line(engine)}


def json_document(result: RunResult) -> dict[str, Any]:
    groups = by_engine(result.records)
    # The top-level summary is the one engine asked, or (--engine both) the LLM's: the one being measured.
    main = "llm" if len(groups) > 1 else next(iter(groups), result.engine)
    primary = groups.get(main, [])
    return {
        **result.model_dump(mode="json", exclude={"records"}),
        "summary": _summary_document(summarize(primary), main, len(groups) > 1),
        "engines": {engine: _summary_document(summarize(group), engine, True) for engine, group in groups.items()},
        "by_class": {name: {**s.model_dump(), "rate": round(s.rate, 4), "recall": round(s.recall, 4)}
                     for name, s in by_class(primary).items()},
        "records": [{**r.model_dump(mode="json"), "recall_ratio": r.recall_ratio}
                    for r in sorted(result.records, key=lambda r: (r.id, r.run_engine))],
    }


def write_json(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_document(result), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: RunResult) -> str:
    records = sorted(result.records, key=lambda r: (r.id, r.run_engine))
    groups = by_engine(records) or {result.engine: []}
    several = len(groups) > 1
    lines = [
        "# kubernaut eval",
        "",
        f"Run `{result.run_id}` started {result.started_at:%Y-%m-%d %H:%M:%S} UTC: {len({r.id for r in records})} "
        f"scenario(s) in {result.seconds:.1f} s, analysis {_md(result.mode)}, concurrency {result.concurrency}.",
        "",
        "```",
        *[line for engine, summary in ((e, summarize(g)) for e, g in groups.items())
          for line in (summary.result_line(engine if several else None), summary.figures_line(engine))],
        "```",
        "",
        "| scenario | engine | class | answer | grade | root-cause recall | analysis s |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for r in records:
        answer = answer_text(r) if r.error is None else f"error: {r.error}"
        lines.append(f"| {_md(r.id)} | {_md(r.engine or r.run_engine)} | {r.scenario_class} | {_md(answer)} | "
                     f"**{r.grade}** | {_recall_text(r)} | {r.analysis_s:.1f} |")
    lines += ["", "## Per class", "", "| class | N | acceptable | preferred | harmful | wrong | errors | rate |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in by_class(groups.get("llm", records) if several else records).items():
        lines.append(f"| {name} | {s.scenarios} | {s.acceptable} | {s.preferred} | {s.harmful} | {s.wrong} | "
                     f"{s.errors} | {s.rate:.2f} |")
    lines += ["", "## Scenarios", ""]
    for r in records:
        lines.append(f"### {r.id}{f' ({r.run_engine})' if several else ''}: {r.grade}")
        lines.append("")
        lines.append(f"*{_md(r.title)}* ({r.scenario_class}; namespace `{r.namespace}`)")
        lines.append("")
        if r.error:
            lines.append(f"- error: {_md(r.error)}")
        else:
            lines.append(f"- answer: `{_md(answer_text(r))}` (engine {r.engine}, confidence {r.confidence})")
            lines.append(f"- root cause: {_md(r.root_cause)}")
        if r.recall is not None and r.recall.missing:
            lines.append(f"- facts not mentioned: {', '.join(f'`{_md(f)}`' for f in r.recall.missing)}")
        for problem in r.teardown_problems:
            lines.append(f"- teardown: {_md(problem)}")
        lines.append("")
    return "\n".join(lines)


def write_markdown(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(result), encoding="utf-8")
