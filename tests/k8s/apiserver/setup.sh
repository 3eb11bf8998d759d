#!/usr/bin/env bash
# Installs the test apiserver's pinned npm dependencies (package-lock.json)
# into node_modules.  Idempotent: does nothing when node_modules already
# matches the lock file.  Needs the npm registry only when npm's cache
# lacks the packages.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null && command -v npm >/dev/null || { echo "setup.sh: node and npm are needed (scripts/deps.sh installs them)" >&2; exit 1; }
# Two test runs may start at once: one installs, the other waits.
exec 9>.setup.lock
flock 9
stamp=node_modules/.jg-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
npm ci --prefer-offline --no-audit --no-fund --loglevel=error
echo "$want" > "$stamp"
