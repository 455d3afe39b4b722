#!/usr/bin/env bash
# The real small LLM for the LLM client tests: llama-server built once (portable flags) and cached.
set -euo pipefail
exec bash scripts/llm-server.sh build
