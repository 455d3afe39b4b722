#!/usr/bin/env bash
# A real headless browser for the console test (tests/console): Debian's chromium and its chromium-driver,
# driven by Selenium (the `test` extra). Installed once; nothing auto-starts.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
