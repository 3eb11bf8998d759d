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
if grep -q FAILED_NO_RESOURCE "$out"; then
  # A small machine: the group asks for more CPUs than this host has.
  home=$(build/jgsched daemon status 2>/dev/null | sed -n 's/^  home: *//p')
  cat <<EOF

== this machine has fewer CPUs than the group asks for ($(nproc) here).  Declare what the
   local backend may hand out in ${home:-<instance home>}/config.yaml, e.g.

     backends:
       local:
         oversubscribe: true            # hand out 4 CPUs per core (or a factor: 2, 8)
         # or: capacity: {cpus: 8}      # a declared capacity instead of the host's

   then: build/jgsched daemon stop && scripts/quickstart.sh   (docs/configuration.md)
EOF
fi
exit "$rc"
