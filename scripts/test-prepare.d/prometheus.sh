#!/usr/bin/env bash
# A real Prometheus (Debian's package) for the effectiveness tests: before/after PromQL and alert rules
# that fire through a real AlertManager. Installed once; nothing auto-starts.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package enables a service on systems with systemd; tests start their own instance.
systemctl disable --now prometheus >/dev/null 2>&1 || true
