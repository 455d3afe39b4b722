"""``kubernaut eval``: arguments in, exit status out (0 ok, 1 a gate failed, 2 cannot run)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the heavy imports wait until `eval` runs: `kubernaut --help` stays fast
    from rich.console import Console

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
TESTENV = REPO_ROOT / "scripts" / "testenv.sh"
DEFAULT_SCENARIOS = REPO_ROOT / "evals" / "scenarios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default=None,
                        help="cluster to run on (default: $KUBECONFIG, else the checkout's test control plane, "
                             "started with scripts/testenv.sh up)")
    parser.add_argument("--engine", choices=["rules", "llm", "both"], default="rules",
                        help="in-process analysis engine: llm asks any OpenAI-compatible endpoint "
                             "(KUBERNAUT_ANALYSIS__LLM_MODEL, __LLM_BASE_URL, __LLM_PROVIDER, __LLM_API_KEY); "
                             "both grades the rules and the LLM side by side on one setup per scenario")
    parser.add_argument("--scenario", default="*", metavar="GLOB", help="scenario ids to run (default: all)")
    parser.add_argument("--scenarios-dir", default=None, type=Path,
                        help=f"scenario directory (default {DEFAULT_SCENARIOS})")
    parser.add_argument("--concurrency", type=int, default=8, help="scenarios run side by side (default 8)")
    parser.add_argument("--analysis-timeout", type=float, default=None, metavar="SECONDS",
                        help="wait this long for an analysis, then count it as an error (default 180; for the "
                             "in-process LLM at least its analysis.llm_incident_time_budget_s + 60)")
    parser.add_argument("--url", dest="eval_url", default=None, metavar="URL",
                        help="ask a running Kubernaut (POST URL/api/v1/analyze) instead of analysing in-process")
    parser.add_argument("--token", dest="eval_token", default=None, help="bearer token for --url")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, metavar="PATH",
                        help="write every record (analysis included) as JSON")
    parser.add_argument("--markdown", dest="markdown_path", type=Path, default=None, metavar="PATH",
                        help="write a Markdown report")
    parser.add_argument("--min-rate", type=float, default=None, metavar="FLOAT",
                        help="exit 1 when acceptable/N is below this")
    parser.add_argument("--max-harmful", type=int, default=None, metavar="INT",
                        help="exit 1 when more answers than this are harmful")


def resolve_kubeconfig(given: str | None, err: Console) -> str:
    from kubernaut.evaluation.runner import EvalConfigError

    if given:
        return given
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    if env:
        return env
    if not TESTENV.is_file():
        raise EvalConfigError("no --kubeconfig, no $KUBECONFIG and no checkout with scripts/testenv.sh")
    err.print("no --kubeconfig / $KUBECONFIG: starting the test control plane (scripts/testenv.sh up)")
    proc = subprocess.run(["bash", str(TESTENV), "up"], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, text=True, check=False)
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        raise EvalConfigError(f"scripts/testenv.sh up failed (exit {proc.returncode})")
    return lines[-1]


async def _interruptible(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro``; the first SIGINT/SIGTERM cancels it, so every scenario's teardown and the private
    nodes' cleanup still run (then KeyboardInterrupt). A second signal acts as usual (stops at once)."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    interrupted = False

    def on_signal() -> None:
        nonlocal interrupted
        if not interrupted:
            interrupted = True
            task.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def gate_failures(rate: float, harmful: int, min_rate: float | None, max_harmful: int | None) -> list[str]:
    """Why the run fails its gates (``--min-rate``, ``--max-harmful``); empty when it passes or has none."""
    failed = []
    if min_rate is not None and rate < min_rate:
        failed.append(f"rate {rate:.2f} < --min-rate {min_rate:.2f}")
    if max_harmful is not None and harmful > max_harmful:
        failed.append(f"harmful {harmful} > --max-harmful {max_harmful}")
    return failed


def _server(kubeconfig: str) -> str:
    """The API server a kubeconfig's current context points at (shown before anything is created)."""
    import yaml

    try:
        data = yaml.safe_load(Path(kubeconfig).read_text(encoding="utf-8")) or {}
        context = next(c["context"] for c in data.get("contexts") or [] if c["name"] == data.get("current-context"))
        return next(c["cluster"]["server"] for c in data.get("clusters") or [] if c["name"] == context["cluster"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration, yaml.YAMLError):
        return "?"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from kubernaut.evaluation.report import RichProgress, print_report, write_json, write_markdown
    from kubernaut.evaluation.runner import EvalConfigError, RunOptions, run_scenarios
    from kubernaut.evaluation.scenario import ScenarioError, load_scenarios

    err = Console(stderr=True)
    directory = args.scenarios_dir or DEFAULT_SCENARIOS
    try:
        scenarios = load_scenarios(directory, args.scenario)
    except ScenarioError as exc:
        err.print(f"[red]invalid scenarios:[/]\n{exc}", highlight=False)
        return 2
    if not scenarios:
        err.print(f"[red]no scenario in {directory} matches {args.scenario!r}[/]")
        return 2
    try:
        kubeconfig = resolve_kubeconfig(args.kubeconfig, err)
        err.print(f"cluster: {_server(kubeconfig)} (kubeconfig {kubeconfig})", highlight=False)
        options = RunOptions(kubeconfig=kubeconfig, engine=args.engine, url=args.eval_url, token=args.eval_token,
                             concurrency=args.concurrency, analysis_timeout_s=args.analysis_timeout)
        with RichProgress(len(scenarios), err) as progress:
            result = asyncio.run(_interruptible(run_scenarios(scenarios, options, progress)))
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]: the scenarios' namespaces and private nodes were cleaned up")
        return 130
    except EvalConfigError as exc:
        err.print(f"[red]cannot run: {exc}[/]", highlight=False)
        return 2
    summaries = print_report(result)
    if args.json_path:
        write_json(result, args.json_path)
    if args.markdown_path:
        write_markdown(result, args.markdown_path)
    # Every engine measured must pass the gates: the LLM never lowers the bar.
    failed = [f"{engine}: {reason}" if len(summaries) > 1 else reason for engine, summary in summaries.items()
              for reason in gate_failures(summary.rate, summary.harmful, args.min_rate, args.max_harmful)]
    for reason in failed:
        print(f"GATE FAILED: {reason}", file=sys.stderr)
    return 1 if failed else 0
