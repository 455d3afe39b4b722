#!/usr/bin/env bash
# The evaluation suite (evals/README.md) on the test control plane:
#   scripts/eval.sh [kubernaut eval options]    e.g. scripts/eval.sh --scenario 'h-*' --json eval.json
# Brings the control plane up (scripts/testenv.sh up; a running one is reused), installs the package into
# ./.venv the first time, then runs `.venv/bin/kubernaut eval --kubeconfig <admin kubeconfig> "$@"`.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

if [[ ! -x .venv/bin/kubernaut ]] || ! .venv/bin/python -c 'import rich, kubernetes' 2>/dev/null; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/python -m pip install -q -e . >&2
fi

kubeconfig="$(bash scripts/testenv.sh up | tail -n 1)"
[[ -f "$kubeconfig" ]] || { echo "scripts/testenv.sh up printed no kubeconfig" >&2; exit 2; }
exec .venv/bin/kubernaut eval --kubeconfig "$kubeconfig" "$@"
