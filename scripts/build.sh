#!/usr/bin/env bash
# Configures (once) and builds jgsched into DIR (default: build).  Extra
# arguments go to `meson setup` on first configuration, e.g. -Db_sanitize=address,undefined.
# Quiet on success; prints the compiler's output on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$dir" >"$log" 2>&1 || { cat "$log"; exit 1; }
