#!/usr/bin/env bash
# The GitOps tests (tests/gitops) serve a bare repository with `git daemon` and merge with `git merge-tree
# --write-tree` (git >= 2.38): Debian's git package carries both. Idempotent: nothing to do when present.
set -euo pipefail
if git daemon --help >/dev/null 2>&1 || [ -x /usr/lib/git-core/git-daemon ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get install -y --no-install-recommends git
fi
