#!/usr/bin/env bash
# Configures (once) and builds jgsched into DIR (default: build).  Extra
# arguments go to `meson setup` on first configuration, e.g. -Db_sanitize=address,undefined.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
  meson setup "$dir" "$@" >/dev/null
fi
ninja -C "$dir" >/dev/null
