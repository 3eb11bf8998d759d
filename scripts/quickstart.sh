#!/usr/bin/env bash
# Installs what is missing, builds, runs examples/quickstart.yaml on the local
# backend following its progress to the end, then prints what its nodes wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
build/jgsched submit examples/quickstart.yaml --infra local | tee "$out" || rc=$?
id=$(sed -n 's/^Submitted group \([0-9]*\).*/\1/p' "$out")
if [ -n "$id" ]; then
  echo
  echo "== output of group $id (jgsched logs $id)"
  build/jgsched logs "$id"
  echo
  echo "== next: build/jgsched show $id    build/jgsched queue    build/jgsched daemon stop"
fi
exit "$rc"
