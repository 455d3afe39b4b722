#!/usr/bin/env bash
# Linters the deploy tests use on real files: promtool (from Debian's prometheus) and shellcheck.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's prometheus package may enable a service; tests start their own instances.
    systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
fi
