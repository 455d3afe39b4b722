#!/usr/bin/env bash
# Install Kubernaut into ./.venv (first time) and run it: `serve run serve_config.yaml` with the shipped ingress, on
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
# `kubernaut run` is `serve run` with the shipped ingress: RAY_SERVE_ENABLE_HA_PROXY=1 and
# RAY_SERVE_THROUGHPUT_OPTIMIZED=1 unless set here (=0 turns them off), HAProxy's files in a private directory and
# its stats listeners on loopback (kubernaut/ingress.py; README, "Ingress").
exec .venv/bin/python -m kubernaut.cli run "${1:-serve_config.yaml}"
