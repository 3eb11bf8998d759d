#!/usr/bin/env bash
# jgsched benchmarks (figures, not pass/fail), on the same loads as
# ../shared/peers/slurm/bench.sh measures Slurm:
#   a. submit rate: N two-job groups with a trivial `run`, one `jgsched submit -d` each
#   b. completion rate for the same load: first submit -> every group ended
#   c. submit -> barrier release for a 7-node group (median of R runs)
#   d. `jgsched queue` latency with the N groups in the store (median of 30 runs)
#   e. daemon peak memory (VmHWM) after the run
#   f. parsing a 10,000-job YAML and hostile 512 KiB ones, a default-policy hook call,
#      1000 store inserts
# Usage: bench/bench.sh [BUILD_DIR]   (N=1000 R=10 by default; override via env;
#        BENCH_DIR=/dev/shm puts the instance on tmpfs, BENCH_NETWORK=host turns isolation off,
#        BENCH_NAT=true turns outbound NAT on: off by default, so the bench leaves this host's
#        forwarding and nftables rules alone; bench_netns measures what NAT adds per group)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
# The bench programs are not built by default; switch them on in this build.
if [ -f "$build/build.ninja" ]; then meson configure "$build" -Dbench=true >/dev/null; fi
"$root/scripts/build.sh" "$build" -Dbench=true
N=${N:-1000}
R=${R:-10}
JG=$build/jgsched
export JGSCHED_HOME
JGSCHED_HOME=$(mktemp -d "${BENCH_DIR:-/tmp}/jgbench.XXXXXX")
cleanup() {
  "$JG" cancel -a >/dev/null 2>&1 || true
  "$JG" daemon stop >/dev/null 2>&1 || true
  pkill -9 -f "$JGSCHED_HOME" 2>/dev/null || true
  rm -rf "$JGSCHED_HOME"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

cat > "$JGSCHED_HOME/two.yaml" <<'Y'
---
name: bench-two
placement: SAME_INFRA
execution: parallel
---
name: a
run: "true"
---
name: b
run: "true"
Y
cat > "$JGSCHED_HOME/seven.yaml" <<'Y'
---
name: bench-seven
placement: SAME_INFRA
execution: parallel
---
name: trainer
num_nodes: 2
setup: "true"
run: "true"
---
name: data-processor
num_nodes: 2
run: "true"
---
name: replay-buffer
run: "true"
---
name: env-worker
num_nodes: 2
run: "true"
Y

# BENCH_NETWORK=host measures without per-node namespaces (the isolation the
# Slurm peer runs with: none); the default is the local backend's isolation.
printf 'backends:\n  local:\n    network: %s\n    nat: %s\n' "${BENCH_NETWORK:-isolated}" \
  "${BENCH_NAT:-false}" >"$JGSCHED_HOME/config.yaml"
"$build/jgschedd"
echo "jgsched bench: network ${BENCH_NETWORK:-isolated}, nat ${BENCH_NAT:-false}, state in $(dirname "$JGSCHED_HOME"), N=$N two-job groups, R=$R runs of a 7-node group, $(nproc) cores"

t0=$(now)
for _ in $(seq "$N"); do "$JG" submit -d "$JGSCHED_HOME/two.yaml" >/dev/null; done
t1=$(now)
while [ "$("$JG" queue --json | jq '[.[] | select(.state | test("SUCCEEDED|FAILED|CANCELLED") | not)] | length')" != 0 ]; do
  sleep 0.1
done
t2=$(now)
ok=$("$JG" queue -a --json | jq '[.[] | select(.state == "SUCCEEDED")] | length')
awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v ok="$ok" 'BEGIN {
  printf "a. submit: %d groups in %.2f s = %.1f groups/s (%.2f ms per submit)\n", n, b-a, n/(b-a), 1000*(b-a)/n
  printf "b. end to end: %.2f s = %.1f groups/s completed (%d of %d SUCCEEDED)\n", c-a, n/(c-a), ok, n }'

for _ in $(seq "$R"); do
  id=$("$JG" submit -d "$JGSCHED_HOME/seven.yaml")
  while ! "$JG" show "$id" --json | jq -e '(.group // .).state | test("SUCCEEDED|FAILED|CANCELLED")' >/dev/null; do sleep 0.05; done
  "$JG" show "$id" --json | jq -r '(.group // .).events as $e |
     (($e[] | select(.subject=="group" and .what=="RUNNING") | .ts) - ($e[] | select(.subject=="group" and .what=="PENDING") | .ts))'
done | median | awk '{ printf "c. 7-node group: submit -> barrier release median %.1f ms\n", $1*1000 }'

for _ in $(seq 30); do
  s=$(now); "$JG" queue -a >/dev/null; e=$(now)
  awk -v s="$s" -v e="$e" 'BEGIN { print (e-s)*1000 }'
done | median | awk -v n="$N" '{ printf "d. jgsched queue -a with %d groups stored: median %.1f ms\n", n, $1 }'

pid=$(cat "$JGSCHED_HOME/jgschedd.pid")
awk '/VmHWM|VmRSS/ { printf "e. jgschedd %s %.1f MiB\n", $1, $2/1024 }' "/proc/$pid/status"

[ -x "$build/bench_spec" ] && "$build/bench_spec" | sed 's/^/f. /'
[ -x "$build/bench_policy" ] && "$build/bench_policy" | sed 's/^/f. /'
[ -x "$build/bench_store" ] && "$build/bench_store" | sed 's/^/f. /'
[ -x "$build/bench_spec_limits" ] && "$build/bench_spec_limits" | sed 's/^/f. /'
if [ -x "$build/bench_netns" ] && [ "$(id -u)" -eq 0 ]; then "$build/bench_netns" | sed 's/^/g. /'; fi
exit 0
