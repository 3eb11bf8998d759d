#!/usr/bin/env bash
# bench_group_cpu.sh - the daemon's own CPU per trivial isolated group
# (figures, not pass/fail): a fresh jgschedd under a temp JGSCHED_HOME with
# `backends: {local: {nat: false}}`, N (200) one-job groups (`run: "true"`)
# submitted with `jgsched submit -d`, one CLI call each, then waited until all
# ended.  Prints the daemon's utime+stime (from /proc/PID/stat) over the whole
# load divided by N, the same figure side_by_side.sh's e2e load gives, without
# Slurm.  Needs root (isolated nodes).
# Usage: bench/bench_group_cpu.sh [BUILD_DIR]   env: N, ROUNDS (1), PERF=1
#   (record `perf record -g` of the daemon over the load into ./perf.data)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || exit 1
N=${N:-200}
ROUNDS=${ROUNDS:-1}
JG=$build/jgsched
JGD=$build/jgschedd
TICK=$(getconf CLK_TCK)
[ "$(id -u)" = 0 ] || { echo "bench_group_cpu: run as root (isolated nodes)" >&2; exit 2; }
WORK=$(mktemp -d /var/tmp/jgcpu.XXXXXX)     # seen by the nodes: not under /tmp
export JGSCHED_HOME=$WORK/home
perf_pid=""
stop_instance() {
    local pid
    [ -d "$JGSCHED_HOME" ] || return 0
    pid=$(cat "$JGSCHED_HOME/jgschedd.pid" 2>/dev/null || true)
    "$JG" cancel -a >/dev/null 2>&1 || true
    "$JG" daemon stop >/dev/null 2>&1 || true
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = jgschedd ]; then
        kill -9 "$pid" 2>/dev/null || true
    fi
}
cleanup() {
    [ -z "$perf_pid" ] || kill -INT "$perf_pid" 2>/dev/null || true
    stop_instance
    rm -rf "$WORK"
}
trap cleanup EXIT
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
jg_active() {
    "$JG" queue --json | jq '(if type == "array" then . else (.groups // []) end)
        | [.[] | select(.state | test("SUCCEEDED|FAILED|CANCELLED") | not)] | length'
}
mkdir -p "$JGSCHED_HOME"
printf '%s\n' 'backends: {local: {nat: false}}' >"$JGSCHED_HOME/config.yaml"
"$JGD" >/dev/null
PID=$(cat "$JGSCHED_HOME/jgschedd.pid")
printf -- '---\nname: one\nrun: "true"\n' >"$WORK/one.yaml"
"$JG" submit -d "$WORK/one.yaml" >/dev/null      # warm-up: first-use costs out of the figure
while [ "$(jg_active)" != 0 ]; do sleep 0.1; done
if [ -n "${PERF:-}" ]; then
    perf record -g -o "${PERF_OUT:-perf.data}" -p "$PID" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 1
fi
for _ in $(seq "$ROUNDS"); do
    c0=$(cpu_ticks "$PID"); t0=$(date +%s.%N)
    for _ in $(seq "$N"); do "$JG" submit -d "$WORK/one.yaml" >/dev/null; done
    while [ "$(jg_active)" != 0 ]; do sleep 0.1; done
    t1=$(date +%s.%N)
    awk -v c="$(( $(cpu_ticks "$PID") - c0 ))" -v t="$TICK" -v n="$N" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "cpu_ms_per_group %.2f  wall_s %.1f\n", 1000*c/t/n, b-a }'
done
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=""; fi
