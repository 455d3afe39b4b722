#!/usr/bin/env bash
# vLLM (CPU build) behind ray.serve.llm for the self-hosted `llm` app test, in its own venv (≈6 min once,
# cached). KUBERNAUT_TEST_VLLM=0 skips it (and the test).
set -euo pipefail
if [[ "${KUBERNAUT_TEST_VLLM:-1}" == "0" ]]; then
    exit 0
fi
exec bash scripts/llm-server.sh vllm-build
