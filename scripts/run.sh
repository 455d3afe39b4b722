#!/usr/bin/env bash
# Install Kubernaut into ./.venv (first time) and run it: exactly `serve run serve_config.yaml`, which listens on
# 127.0.0.1 only: without gateway.tokens every local caller is the anonymous admin (README, "Who may call what").
#   scripts/run.sh [serve_config.yaml]
# Environment: DATABASE_URL (external PostgreSQL with pgvector; default: embedded in ~/.kubernaut/data),
# KUBECONFIG, KUBERNAUT_* overrides (nested with __, e.g. KUBERNAUT_EXECUTION__MODE=live).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import kubernaut, ray.serve" 2>/dev/null; then
    .venv/bin/pip install -q -U pip
    .venv/bin/pip install -q -e .
fi
# Local use: no Ray token auth (Ray 2.60 turns it on by default for fresh clusters).
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
exec .venv/bin/serve run "${1:-serve_config.yaml}"
