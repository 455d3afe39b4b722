#!/usr/bin/env bash
# A real AlertManager (Debian's package) for the webhook tests. Installed once; nothing auto-starts.
set -euo pipefail
if command -v prometheus-alertmanager >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
# The package enables a service on systems with systemd; tests start their own instance.
systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
