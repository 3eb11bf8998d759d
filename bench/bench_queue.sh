#!/usr/bin/env bash
# jgsched queue and submit-many benchmark (figures, not pass/fail).
#
# In one fresh instance (config.yaml: `backends: {local: {capacity: {cpus: 1},
# nat: false}}`):
#   1. a blocker group holding the one cpu runs `sleep`, then
#      `jgsched submit --count 1000` of a 1-cpu group: 1,000 groups PENDING in
#      one call (submit-many rate = 1000 / its wall time; median of RUNS calls,
#      each on top of the previous ones, so the queue grows to RUNS x 1,000);
#      then that store is dropped and a fresh one gets the blocker and 1,000;
#   2. `queue` with those 1,000 pending: median wall time
#      of Q runs (hyperfine when installed); compare with `squeue` at 1,000
#      held jobs (../shared/peers/slurm/bench.sh, part d);
#   3. the daemon stopped, 100,000 ended groups added to its store with
#      build/tests/store_fill (50 of them ended a minute ago), the daemon started
#      again: `queue` (the default view: the active groups, 50 recent ones and
#      the count of the rest), `queue -a` and `queue -a --json` (every group),
#      medians of Q (default view) and 5 (full listings) runs;
#   4. the daemon's resident memory (VmRSS, VmHWM) with the 100,000 stored and
#      the pending groups loaded.
# Usage: bench/bench_queue.sh [BUILD_DIR]   (RUNS=3 Q=20 FILL=100000)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
RUNS=${RUNS:-3}
Q=${Q:-20}
FILL=${FILL:-100000}
JG=$build/jgsched
JGD=$build/jgschedd
FILLER=$build/tests/store_fill
[ -x "$FILLER" ] || { echo "no $FILLER: build the tests (meson compile -C $build)" >&2; exit 2; }
export JGSCHED_HOME
JGSCHED_HOME=$(mktemp -d /tmp/jgbench-queue.XXXXXX)
WORK=$(mktemp -d /var/tmp/jgbench-queue.XXXXXX)     # seen by nodes: not under /tmp
unset JGSCHED_SOCKET

cleanup() {
  "$JG" cancel -a >/dev/null 2>&1 || true
  "$JG" daemon stop >/dev/null 2>&1 || true
  rm -rf "$JGSCHED_HOME" "$WORK"
}
trap cleanup EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ms() { date +%s%3N; }
# ms_of CMD...: wall milliseconds of one run, output discarded
ms_of() { local t0 t1; t0=$(now_ms); "$@" >/dev/null; t1=$(now_ms); echo $((t1 - t0)); }
# median_ms N CMD...: median wall ms of N runs (hyperfine's when installed)
median_ms() {
  local n=$1; shift
  if command -v hyperfine >/dev/null; then
    hyperfine -N -w 2 -r "$n" --export-json "$WORK/hf.json" "$(printf '%q ' "$@")" >/dev/null 2>&1
    jq '.results[0].median * 1000 | . * 10 | round / 10' "$WORK/hf.json"
  else
    for ((i = 0; i < n; i++)); do ms_of "$@"; done | median
  fi
}
daemon_pid() { tr -dc '0-9' <"$JGSCHED_HOME/jgschedd.pid"; }
TICK_MS=$((1000 / $(getconf CLK_TCK)))
daemon_cpu_ms() { awk -v t="$TICK_MS" '{ print ($14 + $15) * t }' "/proc/$(daemon_pid)/stat"; }
# cpu_ms N CMD...: "CLI ms / daemon ms" of CPU per call, medians of N runs:
# less sensitive than wall time to what else runs on the machine.
cpu_ms() {
  local n=$1 i d0 d1; shift
  : >"$WORK/cli.ms"; : >"$WORK/d.ms"
  for ((i = 0; i < n; i++)); do
    d0=$(daemon_cpu_ms)
    /usr/bin/time -f '%U %S' -o "$WORK/t" "$@" >/dev/null
    d1=$(daemon_cpu_ms)
    awk '{ printf "%.0f\n", ($1 + $2) * 1000 }' "$WORK/t" >>"$WORK/cli.ms"
    echo $((d1 - d0)) >>"$WORK/d.ms"
  done
  echo "$(median <"$WORK/cli.ms") / $(median <"$WORK/d.ms")"
}

cat >"$JGSCHED_HOME/config.yaml" <<'EOF'
backends:
  local:
    capacity: {cpus: 1}
    nat: false
EOF
cat >"$WORK/blocker.yaml" <<EOF
---
name: blocker
execution: parallel
---
name: hold
resources: {cpus: 1}
run: sleep 3600
EOF
cat >"$WORK/task.yaml" <<'EOF'
---
name: task
execution: parallel
---
name: work
resources: {cpus: 1}
run: "true"
EOF

# The rate: RUNS calls on top of each other (the queue grows by 1,000 each).
"$JGD"
"$JG" submit -d "$WORK/blocker.yaml" >/dev/null
rates=()
for ((r = 0; r < RUNS; r++)); do
  t=$(ms_of "$JG" submit --count 1000 -n "task$r" "$WORK/task.yaml")
  rates+=("$(awk -v t="$t" 'BEGIN { printf "%.0f\n", 1000 / (t / 1000) }')")
done
rate=$(printf '%s\n' "${rates[@]}" | median)
"$JG" cancel -a >/dev/null
"$JG" daemon stop >/dev/null
while "$JG" daemon status >/dev/null 2>&1; do sleep 0.2; done
config=$(cat "$JGSCHED_HOME/config.yaml")
rm -rf "$JGSCHED_HOME"
JGSCHED_HOME=$(mktemp -d /tmp/jgbench-queue.XXXXXX)
printf '%s\n' "$config" >"$JGSCHED_HOME/config.yaml"

# A fresh store: the blocker and 1,000 pending groups, then 100,000 ended ones.
"$JGD"
"$JG" submit -d "$WORK/blocker.yaml" >/dev/null
"$JG" submit --count 1000 "$WORK/task.yaml" >/dev/null
queue_1k=$(median_ms "$Q" "$JG" queue)
queue_1k_a=$(median_ms "$Q" "$JG" queue -a)
queue_1k_cpu=$(cpu_ms "$Q" "$JG" queue)
pending=$("$JG" queue -s pending --json | jq length)

"$JG" daemon stop >/dev/null
while [ -e "$JGSCHED_HOME/jgsched.sock" ] && "$JG" daemon status >/dev/null 2>&1; do sleep 0.2; done
t0=$(now_ms)
"$FILLER" "$JGSCHED_HOME/jgsched.db" "$FILL" 50
fill_s=$(awk -v t="$(( $(now_ms) - t0 ))" 'BEGIN { printf "%.1f\n", t / 1000 }')
"$JGD"
default_100k=$(median_ms "$Q" "$JG" queue)
full_100k=$(median_ms 5 "$JG" queue -a)
json_100k=$(median_ms 5 "$JG" queue -a --json)
default_100k_cpu=$(cpu_ms "$Q" "$JG" queue)
full_100k_cpu=$(cpu_ms 3 "$JG" queue -a)
stored=$("$JG" queue -a --json | jq length)
pid=$(daemon_pid)
rss=$(awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
hwm=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")

echo "# bench_queue.sh $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cpus"
printf '%-58s %s\n' "submit --count 1000 (groups/s accepted, median of $RUNS)" "$rate"
printf '%-58s %s\n' "queue, 1,000 pending (ms, median of $Q)" "$queue_1k"
printf '%-58s %s\n' "queue -a, 1,000 pending (ms, median of $Q)" "$queue_1k_a"
printf '%-58s %s\n' "  CPU of queue, 1,000 pending (ms, CLI / daemon)" "$queue_1k_cpu"
printf '%-58s %s\n' "groups stored / pending at the 100k figures" "$stored / $pending"
printf '%-58s %s\n' "queue default view, 100k stored (ms, median of $Q)" "$default_100k"
printf '%-58s %s\n' "queue -a, 100k stored (ms, median of 5)" "$full_100k"
printf '%-58s %s\n' "queue -a --json, 100k stored (ms, median of 5)" "$json_100k"
printf '%-58s %s\n' "  CPU of the default view, 100k (ms, CLI / daemon)" "$default_100k_cpu"
printf '%-58s %s\n' "  CPU of queue -a, 100k (ms, CLI / daemon)" "$full_100k_cpu"
printf '%-58s %s\n' "daemon VmRSS / VmHWM, 100k stored (MiB)" "$rss / $hwm"
printf '%-58s %s\n' "store_fill of $FILL groups (s, not a figure of jgsched)" "$fill_s"
