"""What a run shows: a progress bar while running, then a table, a per-class summary and the line

    RESULT scenarios=N acceptable=A preferred=P harmful=H wrong=W errors=E rate=0.xx recall=0.xx

(rate = acceptable / N, errors included in N; recall = root-cause facts found / facts expected over
all scenarios, errors included; 0.00 when no scenario lists facts). Optionally a JSON file with
every record (the analysis included) and a Markdown report.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel
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

    @property
    def rate(self) -> float:
        return self.acceptable / self.scenarios if self.scenarios else 0.0

    @property
    def recall(self) -> float:
        return self.facts_found / self.facts_total if self.facts_total else 0.0

    def result_line(self) -> str:
        return (f"RESULT scenarios={self.scenarios} acceptable={self.acceptable} preferred={self.preferred} "
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
    return summary


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


def class_table(records: list[ScenarioRecord]) -> Table:
    table = Table(title="per class")
    for column in ("class", "N", "acceptable", "preferred", "harmful", "wrong", "errors", "rate", "recall"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, s in by_class(records).items():
        table.add_row(name, str(s.scenarios), str(s.acceptable), str(s.preferred), str(s.harmful), str(s.wrong),
                      str(s.errors), f"{s.rate:.2f}", f"{s.recall:.2f}" if s.facts_total else "—")
    return table


def print_report(result: RunResult, console: Console | None = None) -> Summary:
    console = console or Console()
    if not console.is_terminal:
        console.width = max(console.width, 160)  # CI logs and files: no 80-column wrapping of the table
    records = sorted(result.records, key=lambda r: r.id)
    summary = summarize(records)
    if records:
        console.print(results_table(records))
        console.print(class_table(records))
    leftovers = [(r.id, p) for r in records for p in r.teardown_problems]
    for scenario_id, problem in leftovers:
        console.print(f"[yellow]teardown {scenario_id}: {problem}[/]", highlight=False)
    console.print(f"run {result.run_id}: {len(records)} scenario(s) in {result.seconds:.1f}s, {result.mode}, "
                  f"concurrency {result.concurrency}", highlight=False)
    # Plain, unstyled, one line: what scripts and CI parse.
    print(summary.result_line(), flush=True)
    return summary


def json_document(result: RunResult) -> dict[str, Any]:
    summary = summarize(result.records)
    return {
        **result.model_dump(mode="json", exclude={"records"}),
        "summary": {**summary.model_dump(), "rate": round(summary.rate, 4), "recall": round(summary.recall, 4),
                    "result": summary.result_line()},
        "by_class": {name: {**s.model_dump(), "rate": round(s.rate, 4), "recall": round(s.recall, 4)}
                     for name, s in by_class(result.records).items()},
        "records": [{**r.model_dump(mode="json"), "recall_ratio": r.recall_ratio}
                    for r in sorted(result.records, key=lambda r: r.id)],
    }


def write_json(result: RunResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_document(result), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(result: RunResult) -> str:
    records = sorted(result.records, key=lambda r: r.id)
    summary = summarize(records)
    lines = [
        "# kubernaut eval",
        "",
        f"Run `{result.run_id}` started {result.started_at:%Y-%m-%d %H:%M:%S} UTC: {len(records)} scenario(s) in "
        f"{result.seconds:.1f} s, analysis {_md(result.mode)}, concurrency {result.concurrency}.",
        "",
        "```",
        summary.result_line(),
        "```",
        "",
        "| scenario | class | answer | grade | root-cause recall | s |",
        "|---|---|---|---|---:|---:|",
    ]
    for r in records:
        answer = answer_text(r) if r.error is None else f"error: {r.error}"
        lines.append(f"| {_md(r.id)} | {r.scenario_class} | {_md(answer)} | **{r.grade}** | {_recall_text(r)} | "
                     f"{r.seconds:.1f} |")
    lines += ["", "## Per class", "", "| class | N | acceptable | preferred | harmful | wrong | errors | rate |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in by_class(records).items():
        lines.append(f"| {name} | {s.scenarios} | {s.acceptable} | {s.preferred} | {s.harmful} | {s.wrong} | "
                     f"{s.errors} | {s.rate:.2f} |")
    lines += ["", "## Scenarios", ""]
    for r in records:
        lines.append(f"### {r.id}: {r.grade}")
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
