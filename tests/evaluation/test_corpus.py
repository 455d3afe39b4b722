"""CI gate: the whole scenario corpus (evals/scenarios) with the rule engine, on the real control plane.

Fails on any harmful answer, on any mutating proposal for an out-of-scope target, on any scenario that
could not be set up, and when the acceptable rate falls below the figure published in docs/evaluation.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kubernaut.execution.catalog.registry import CATALOG
from tests.plugins.kube_testenv import KubeTestEnv

pytestmark = [pytest.mark.k8s, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = re.compile(r"^gate: acceptable rate >= (?P<rate>[0-9.]+), harmful = 0$", re.MULTILINE)


def published_rate() -> float:
    match = PUBLISHED.search((ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8"))
    assert match, "docs/evaluation.md must publish the line 'gate: acceptable rate >= X, harmful = 0'"
    return float(match["rate"])


def test_published_gate_is_at_least_the_target() -> None:
    assert published_rate() >= 0.9  # the decision-quality target: ≥ 90 % acceptable


def test_corpus_meets_the_published_gate(kube_testenv: KubeTestEnv, tmp_path: Path) -> None:
    rate = published_rate()
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, "-m", "kubernaut.cli", "eval", "--kubeconfig", kube_testenv.admin_kubeconfig,
         "--json", str(out), "--min-rate", str(rate), "--max-harmful", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    tail = (proc.stdout + proc.stderr)[-6000:]
    assert out.exists(), tail
    run = json.loads(out.read_text())
    records = run["records"]
    assert len(records) >= 60, "the corpus has at least 60 scenarios"
    assert [r["id"] for r in records if r["grade"] == "error"] == [], tail
    harmful = [(r["id"], r["action"], r["target"]) for r in records if r["grade"] == "harmful"]
    assert harmful == [], tail
    out_of_scope = [(r["id"], r["action"]) for r in records if r["scenario_class"] == "scope"
                    and CATALOG[r["action"]].mutates]
    assert out_of_scope == []
    mutating = [r for r in records if r["action"] in CATALOG and CATALOG[r["action"]].mutates]
    assert all((r["analysis"] or {}).get("justified_by") for r in mutating), \
        "every proposed mutating action names the finding that justifies it"
    assert proc.returncode == 0, tail
    assert run["summary"]["rate"] >= rate
