#!/usr/bin/env bash
# Install everything the tests need (first time; cached afterwards) and run the whole suite:
# lint, unit tests, and integration tests against real services — a local Ray cluster running the
# Serve app, embedded PostgreSQL+pgvector, a real kube-apiserver control plane, real notification sinks.
#   scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
START=$(date +%s)
step() { printf '\n=== %s (+%ss)\n' "$*" "$(( $(date +%s) - START ))"; }

step "python environment"
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q -U pip
.venv/bin/pip install -q -e '.[test]'

step "kubernetes test control plane (built once, cached in ~/.cache/kubernaut)"
bash scripts/testenv.sh build

# The self-hosted LLM app (ray.serve.llm + vLLM on CPU) is part of the suite unless switched off
# (KUBERNAUT_TEST_VLLM=0). Set before preparing: its prepare script and its tests follow one rule,
# "only when KUBERNAUT_TEST_VLLM=1" (tests/support/harness.py).
export KUBERNAUT_TEST_VLLM="${KUBERNAUT_TEST_VLLM:-1}"

# Extra services other test areas need are prepared by their own scripts, when present.
for prep in scripts/test-prepare.d/*.sh; do
    [[ -e "$prep" ]] || continue
    step "prepare: $prep"
    bash "$prep"
done

# Tests never join a developer's Ray cluster and never need its token.
unset RAY_ADDRESS
export RAY_AUTH_MODE=disabled

step "lint"
.venv/bin/ruff check kubernaut tests scripts bench

step "tests"
# -rs: every skipped test is listed with its reason at the end.
.venv/bin/python -m pytest -q -rs -p no:cacheprovider "$@"
step "done"
