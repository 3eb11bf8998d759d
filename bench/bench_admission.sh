#!/usr/bin/env bash
# jgsched admission benchmark (figures, not pass/fail): a long queue drained
# through a small declared capacity, to show that admission costs the daemon
# the same per admitted group however long the queue is (it stops at the
# blocked queue head instead of rescanning every pending group per event).
#
# For each N (default 1000 and 2000), in a fresh instance whose config.yaml
# declares `backends: {local: {capacity: {cpus: 4}, nat: false}}`:
#   - a blocker group asking all 4 cpus is submitted and held running, so the
#     N groups submitted next all queue up PENDING (the whole queue is there
#     when the drain starts, the worst case for a scheduler that rescans);
#   - N one-node groups with `resources: {cpus: 1}` and `run: "sleep 0.2"`
#     are submitted with `jgsched submit -d`, one CLI call each;
#   - right after the last submit the blocker is let go: 4 groups then run
#     at a time, so the drain cannot beat N * 0.2 s / 4 (20 groups/s);
#   - the drain is timed from the last submit until all N SUCCEEDED (polling
#     `show` of the last group, then one `queue`), and the daemon's own CPU
#     time (utime + stime from /proc/PID/stat) over that interval is divided
#     by N: CPU ms per admitted group (which includes launching and reaping
#     the node, not only the admission decision).
# Usage: bench/bench_admission.sh [BUILD_DIR]   (NS="1000 2000" by default)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
NS=${NS:-1000 2000}
JG=$build/jgsched
TICK=$(getconf CLK_TCK)
export JGSCHED_HOME=""
WORK=$(mktemp -d /var/tmp/jgbench-adm.XXXXXX)     # seen by nodes: not under /tmp

stop_instance() {
  [ -n "$JGSCHED_HOME" ] || return 0
  touch "$WORK/release"
  "$JG" cancel -a >/dev/null 2>&1 || true
  "$JG" daemon stop >/dev/null 2>&1 || true
  pkill -9 -f "$JGSCHED_HOME" 2>/dev/null || true
  rm -rf "$JGSCHED_HOME"
  JGSCHED_HOME=""
}
cleanup() {
  stop_instance
  rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }
# The daemon's CPU time so far, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the parenthesised command name).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
state_of() { "$JG" show "$1" --json | jq -r '(.group // .).state'; }

cat >"$WORK/blocker.yaml" <<Y
---
name: blocker
resources: {cpus: 4}
run: |
  for i in \$(seq 6000); do [ -e $WORK/release ] && exit 0; sleep 0.1; done
Y
cat >"$WORK/one.yaml" <<'Y'
---
name: one
resources: {cpus: 1}
run: "sleep 0.2"
Y

echo "jgsched admission bench: capacity cpus 4, groups of 1 node x 1 cpu running sleep 0.2," \
     "$(nproc) cores"
prev_per=""
for N in $NS; do
  JGSCHED_HOME=$(mktemp -d /tmp/jgbench-adm-home.XXXXXX)
  rm -f "$WORK/release"
  printf 'backends: {local: {capacity: {cpus: 4}, nat: false}}\n' >"$JGSCHED_HOME/config.yaml"
  "$build/jgschedd"
  pid=$(cat "$JGSCHED_HOME/jgschedd.pid")

  blocker=$("$JG" submit -d "$WORK/blocker.yaml")
  while [ "$(state_of "$blocker")" != RUNNING ]; do sleep 0.05; done
  c0=$(cpu_ticks "$pid"); t0=$(now)
  for _ in $(seq "$N"); do last=$("$JG" submit -d "$WORK/one.yaml"); done
  t1=$(now); c1=$(cpu_ticks "$pid")
  pending=$("$JG" queue --json | jq '[.[] | select(.state == "PENDING")] | length')
  touch "$WORK/release"

  while :; do
    st=$(state_of "$last")
    case $st in SUCCEEDED | FAILED* | CANCELLED) break ;; esac
    sleep 0.25
  done
  while [ "$("$JG" queue --json | jq '[.[] | select(.state | test("SUCCEEDED|FAILED|CANCELLED") | not)] | length')" != 0 ]; do
    sleep 0.1
  done
  t2=$(now); c2=$(cpu_ticks "$pid")
  ok=$("$JG" queue -a --json | jq '[.[] | select(.name == "one" and .state == "SUCCEEDED")] | length')
  rss=$(awk '/VmHWM/ { printf "%.1f", $2/1024 }' "/proc/$pid/status")

  per=$(awk -v c="$((c2 - c1))" -v t="$TICK" -v n="$N" 'BEGIN { printf "%.3f", 1000*c/t/n }')
  awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v ok="$ok" -v p="$pending" -v t="$TICK" \
      -v cs="$((c1 - c0))" -v cd="$((c2 - c1))" -v per="$per" -v rss="$rss" 'BEGIN {
    printf "N=%d: submit %.2f s (%.1f ms per submit, daemon CPU %.2f ms per submit), %d PENDING at the last submit\n",
           n, b-a, 1000*(b-a)/n, 1000*cs/t/n, p
    printf "  drain: last submit -> all SUCCEEDED %.2f s = %.1f groups/s admitted (ideal 20.0: 4 cpus / 0.2 s); %d of %d SUCCEEDED\n",
           c-b, n/(c-b), ok, n
    printf "  daemon CPU during the drain: %.0f ms = %s ms per admitted group; peak RSS %s MiB\n",
           1000*cd/t, per, rss }'
  if [ -n "$prev_per" ]; then
    awk -v a="$prev_per" -v b="$per" -v n0="$prev_n" -v n="$N" 'BEGIN {
      printf "  scaling: CPU per admitted group at N=%d is %.2fx that at N=%d (1.00 = linear total cost)\n",
             n, (a > 0 ? b/a : 0), n0 }'
  fi
  prev_per=$per
  prev_n=$N
  stop_instance
done
exit 0
