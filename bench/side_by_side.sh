#!/usr/bin/env bash
# side_by_side.sh - jgsched next to a real Slurm on the same machine, on the
# same loads, alternated (Slurm, then jgsched, per load and per round), so a
# change in the machine's speed hits both.  Prints one table of medians and
# ratios (figures, not pass/fail).  Needs root (Slurm's daemons, jgsched's
# isolated nodes) and the Slurm peer of ../shared/peers/slurm (setup.sh there
# installs and starts it; its README says what it is).
#
# Loads:
#   submit   N (500) one-job groups, one CLI call each (`jgsched submit -d` /
#            `sbatch --wrap true`), while the earlier ones run: submits/s
#   e2e      the same N: first submit -> all ended; the daemon's CPU over it
#            per group (jgschedd / slurmctld, utime+stime from /proc/PID/stat)
#   group3   a 3-job group (1, 2, 1 cpus; Slurm: a hetjob in its 3-node
#            partition `het`): submit -> every node running, R (10) samples
#            (jgsched: from its events; Slurm: squeue polled every 20 ms)
#   queue    `jgsched queue` / `squeue` with Q pending (QUEUE_SIZES, default
#            "1000 10000"; 100000 works once `queue` pages), Q_RUNS (20)
#            timed runs each; a `queue` that fails is shown with its exit code
#            and, while the queue fills, the daemon's CPU per pending
#            submit (jgschedd / slurmctld, from /proc/PID/stat, over the
#            submits since the previous size)
#   memory   the daemons' VmHWM after the queue load
#   cli      start-up CPU and page faults of `jgsched --version` and
#            `sbatch --version` next to a minimal libc program, and the CPU
#            of one submit (bench/exec_cost.c; STARTUP_RUNS 200, SUBMIT_RUNS 30)
# Usage: bench/side_by_side.sh [BUILD_DIR]
#   env: N ROUNDS (2 rounds of submit/e2e) R QUEUE_SIZES Q_RUNS STARTUP_RUNS
#        SUBMIT_RUNS SLURM_PEER (the peer's folder) SLURM_KEEP=1 (leave the
#        Slurm cluster running; by default it is stopped at the end if this
#        script started it)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || exit 1    # absolute: commands run from other directories
N=${N:-500}
ROUNDS=${ROUNDS:-2}
R=${R:-10}
QUEUE_SIZES=${QUEUE_SIZES:-1000 10000}
Q_RUNS=${Q_RUNS:-20}
STARTUP_RUNS=${STARTUP_RUNS:-200}
SUBMIT_RUNS=${SUBMIT_RUNS:-30}
JG=$build/jgsched
JGD=$build/jgschedd
[ "$(id -u)" = 0 ] || { echo "side_by_side: run as root (Slurm's daemons, isolated nodes)" >&2; exit 2; }
if [ ! -x "$JG" ] || [ ! -x "$JGD" ]; then echo "side_by_side: build first (scripts/build.sh $build)" >&2; exit 2; fi
PEER=${SLURM_PEER:-}
for d in "$root/../shared/peers/slurm" "$root/../../shared/peers/slurm"; do
    [ -z "$PEER" ] && [ -r "$d/common.sh" ] && PEER=$(cd "$d" && pwd)
done
[ -n "$PEER" ] || { echo "side_by_side: no Slurm peer found; set SLURM_PEER" >&2; exit 2; }
# shellcheck source=/dev/null
. "$PEER/common.sh"
command -v jq >/dev/null || { echo "side_by_side: needs jq" >&2; exit 2; }

WORK=$(mktemp -d /var/tmp/jgsbs.XXXXXX)    # seen by the nodes: not under /tmp
TICK=$(getconf CLK_TCK)
slurm_was_up=false
all_recorded_alive && slurm_was_up=true
jg_homes=()

stop_jg() {  # HOME: stops the instance there (its recorded pid only) and removes it
    local home=$1 pid
    [ -d "$home" ] || return 0
    JGSCHED_HOME=$home "$JG" cancel -a >/dev/null 2>&1 || true
    pid=$(cat "$home/jgschedd.pid" 2>/dev/null || true)
    JGSCHED_HOME=$home "$JG" daemon stop >/dev/null 2>&1 || true
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = jgschedd ]; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$home"
}
cleanup() {
    local h
    for h in "${jg_homes[@]}"; do stop_jg "$h"; done
    if [ -s "$WORK/slurm_ids" ]; then xargs -r scancel <"$WORK/slurm_ids" 2>/dev/null || true; fi
    if ! $slurm_was_up && [ -z "${SLURM_KEEP:-}" ]; then bash "$PEER/teardown.sh" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (!NR) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2/1024 }' "/proc/$1/status"; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", (b-a)*1000 }'; }
# shellcheck disable=SC2034  # filled and read through namerefs (add, med)
declare -A JGV SLV      # figure -> list of samples (space separated)
add() { local -n arr=$1; arr[$2]="${arr[$2]:-} $3"; }

# ---- the two systems -------------------------------------------------------
echo "== Slurm peer: $PEER"
bash "$PEER/setup.sh" >"$WORK/slurm-setup.log" 2>&1 || { cat "$WORK/slurm-setup.log" >&2; exit 1; }
CTLD=$(recorded_pid slurmctld)
pid_alive "$CTLD" slurmctld || { echo "slurmctld is not running" >&2; exit 1; }
mkdir -p "$WORK/slurm"

new_jg() {  # CONFIG_YAML: starts an instance, prints its home
    local home
    home=$(mktemp -d /var/tmp/jgsbs-home.XXXXXX)
    printf '%s\n' "$1" >"$home/config.yaml"
    JGSCHED_HOME=$home "$JGD" >/dev/null
    echo "$home"
}
jg_active() {  # groups not ended, in the view `queue --json` gives
    "$JG" queue --json | jq '(if type == "array" then . else (.groups // []) end)
        | [.[] | select(.state | test("SUCCEEDED|FAILED|CANCELLED") | not)] | length'
}
export JGSCHED_HOME
# Slurm's het partition is 3 virtual nodes of 2 cpus each (and every core may
# take 64 jobs): the jgsched instance declares 8 cpus, so the 1+2+1-cpu group
# fits as it does there.
JGSCHED_HOME=$(new_jg 'backends: {local: {nat: false, capacity: {cpus: 8}}}')
jg_homes+=("$JGSCHED_HOME")
JGA=$JGSCHED_HOME
JGPID=$(cat "$JGA/jgschedd.pid")

cat >"$WORK/one.yaml" <<'Y'
---
name: one
run: "true"
Y
cat >"$WORK/three.yaml" <<'Y'
---
name: three
execution: parallel
---
name: a
resources: {cpus: 1}
run: "sleep 1"
---
name: b
resources: {cpus: 2}
run: "sleep 1"
---
name: c
resources: {cpus: 1}
run: "sleep 1"
Y
cat >"$WORK/slurm/het.sbatch" <<'S'
#!/bin/bash
#SBATCH -p het -n1 -c1 -o /dev/null
#SBATCH hetjob
#SBATCH -p het -n1 -c2
#SBATCH hetjob
#SBATCH -p het -n1 -c1
sleep 1
S
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "   jgsched $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), isolated nodes, NAT off; $(sinfo -V)"

# ---- submit + e2e ----------------------------------------------------------
slurm_submit_e2e() {
    cd "$WORK/slurm"
    local c0 t0 t1 t2 id
    c0=$(cpu_ticks "$CTLD"); t0=$(now)
    for _ in $(seq "$N"); do id=$(sbatch --parsable --wrap true); echo "$id" >>"$WORK/slurm_ids"; done
    t1=$(now)
    while [ "$(squeue -h | wc -l)" != 0 ]; do sleep 0.1; done
    t2=$(now)
    add SLV submit "$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { print n/(b-a) }')"
    add SLV e2e "$(awk -v a="$t0" -v c="$t2" 'BEGIN { print c-a }')"
    add SLV cpu_group "$(awk -v c="$(( $(cpu_ticks "$CTLD") - c0 ))" -v t="$TICK" -v n="$N" 'BEGIN { print 1000*c/t/n }')"
    rm -f slurm-*.out
    cd "$root"
}
jg_submit_e2e() {
    local c0 t0 t1 t2
    c0=$(cpu_ticks "$JGPID"); t0=$(now)
    for _ in $(seq "$N"); do "$JG" submit -d "$WORK/one.yaml" >/dev/null; done
    t1=$(now)
    while [ "$(jg_active)" != 0 ]; do sleep 0.1; done
    t2=$(now)
    add JGV submit "$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { print n/(b-a) }')"
    add JGV e2e "$(awk -v a="$t0" -v c="$t2" 'BEGIN { print c-a }')"
    add JGV cpu_group "$(awk -v c="$(( $(cpu_ticks "$JGPID") - c0 ))" -v t="$TICK" -v n="$N" 'BEGIN { print 1000*c/t/n }')"
}
for round in $(seq "$ROUNDS"); do
    echo "== submit/e2e round $round of $ROUNDS ($N groups each)"
    slurm_submit_e2e
    jg_submit_e2e
done

# ---- a 3-job group: submit -> every node running ---------------------------
echo "== 3-job group, $R samples each"
for _ in $(seq "$R"); do
    cd "$WORK/slurm"
    t0=$(now)
    hj=$(sbatch --parsable het.sbatch)
    echo "$hj" >>"$WORK/slurm_ids"
    while [ "$(squeue -h -j "$hj" -t R -o %T 2>/dev/null | wc -l)" != 3 ]; do sleep 0.02; done
    add SLV group3 "$(ms_since "$t0")"
    while [ -n "$(squeue -h -j "$hj" 2>/dev/null)" ]; do sleep 0.1; done
    cd "$root"
    id=$("$JG" submit -d "$WORK/three.yaml")
    while ! "$JG" show "$id" --json | jq -e '(.group // .).state | test("SUCCEEDED|FAILED|CANCELLED")' >/dev/null; do sleep 0.1; done
    add JGV group3 "$("$JG" show "$id" --json | jq -r '(.group // .).events as $e |
        (($e[] | select(.subject=="group" and .what=="RUNNING") | .ts) -
         ($e[] | select(.subject=="group" and .what=="PENDING") | .ts)) * 1000')"
done

# ---- CLI start-up and one submit -------------------------------------------
echo "== CLI start-up ($STARTUP_RUNS runs each) and one submit ($SUBMIT_RUNS runs each)"
cc -O2 -o "$WORK/exec_cost" "$root/bench/exec_cost.c"
printf '#include <stdio.h>\nint main(void) { puts("min 0.1.0"); return 0; }\n' >"$WORK/min.c"
cc -O2 -o "$WORK/min" "$WORK/min.c"
# shellcheck disable=SC2207  # numbers only
cost=($("$WORK/exec_cost" "$STARTUP_RUNS" "$WORK/min" -- "$JG" --version -- "$(command -v sbatch)" --version))
MIN_CPU=${cost[0]} MIN_FLT=${cost[1]}
add JGV start_cpu "$(awk -v a="${cost[3]}" 'BEGIN { print a/1000 }')"
add JGV start_flt "${cost[4]}"
add SLV start_cpu "$(awk -v a="${cost[6]}" 'BEGIN { print a/1000 }')"
add SLV start_flt "${cost[7]}"
cd "$WORK/slurm"
# shellcheck disable=SC2207
cost=($("$WORK/exec_cost" "$SUBMIT_RUNS" "$JG" submit -d "$WORK/one.yaml" -- "$(command -v sbatch)" --wrap true))
cd "$root"
add JGV submit_cpu "$(awk -v a="${cost[0]}" 'BEGIN { print a/1000 }')"
add SLV submit_cpu "$(awk -v a="${cost[3]}" 'BEGIN { print a/1000 }')"
while [ "$(squeue -h | wc -l)" != 0 ] || [ "$(jg_active)" != 0 ]; do sleep 0.2; done
JG_HWM_RUN=$(hwm_mib "$JGPID")
stop_jg "$JGA"

# ---- queue with many pending -----------------------------------------------
# jgsched has no held state: one cpu is declared and a blocker holds it, so
# every group asking a cpu stays PENDING.  Both are filled by 4 parallel CLIs.
JGSCHED_HOME=$(new_jg 'backends: {local: {nat: false, capacity: {cpus: 1}}}')
jg_homes+=("$JGSCHED_HOME")
JGPID=$(cat "$JGSCHED_HOME/jgschedd.pid")
cat >"$WORK/blocker.yaml" <<Y
---
name: blocker
resources: {cpus: 1}
run: "sleep 100000"
Y
cat >"$WORK/pending.yaml" <<'Y'
---
name: pending
resources: {cpus: 1}
run: "true"
Y
"$JG" submit -d "$WORK/blocker.yaml" >/dev/null
have=0
for q in $QUEUE_SIZES; do
    echo "== queue with $q pending"
    cd "$WORK/slurm"
    t0=$(now); c0=$(cpu_ticks "$CTLD")
    seq $((q - have)) | xargs -P 4 -I{} sbatch --hold --parsable --wrap true >>"$WORK/slurm_ids"
    echo "   Slurm filled in $(ms_since "$t0") ms"
    add SLV "cpu_submit$q" "$(awk -v c="$(( $(cpu_ticks "$CTLD") - c0 ))" -v t="$TICK" -v n="$((q - have))" 'BEGIN { print 1000*c/t/n }')"
    t0=$(now); c0=$(cpu_ticks "$JGPID")
    seq $((q - have)) | xargs -P 4 -I{} "$JG" submit -d "$WORK/pending.yaml" >/dev/null
    echo "   jgsched filled in $(ms_since "$t0") ms"
    add JGV "cpu_submit$q" "$(awk -v c="$(( $(cpu_ticks "$JGPID") - c0 ))" -v t="$TICK" -v n="$((q - have))" 'BEGIN { print 1000*c/t/n }')"
    have=$q
    jg_rc=0
    for _ in $(seq "$Q_RUNS"); do
        t0=$(now); squeue >/dev/null; add SLV "queue$q" "$(ms_since "$t0")"
        t0=$(now); rc=0; "$JG" queue >/dev/null 2>&1 || rc=$?
        if [ "$rc" = 0 ]; then add JGV "queue$q" "$(ms_since "$t0")"; else jg_rc=$rc; fi
    done
    [ "$jg_rc" = 0 ] || echo "   jgsched queue failed: exit $jg_rc"
    JGV[queue${q}_rc]=$jg_rc
    cd "$root"
done
JG_HWM_Q=$(hwm_mib "$JGPID")
SL_HWM=$(hwm_mib "$CTLD")
xargs -r scancel <"$WORK/slurm_ids" 2>/dev/null || true
: >"$WORK/slurm_ids"

# ---- the table ---------------------------------------------------------------
# shellcheck disable=SC2178
med() { local -n arr=$1; echo "${arr[$2]:-}" | tr ' ' '\n' | grep . | median; }
row() {  # label jg slurm better(lower|higher) unit
    awk -v l="$1" -v j="$2" -v s="$3" -v b="$4" -v u="$5" 'BEGIN {
        if (j == "nan" || j == "" || j ~ /^fails/) { printf "| %s | %s | %.4g %s | - |\n", l, (j == "" || j == "nan") ? "-" : j, s, u; exit }
        r = (b == "lower") ? s / j : j / s
        printf "| %s | %.4g %s | %.4g %s | %.2fx %s |\n", l, j, u, s, u, r, (r >= 1 ? "jgsched better" : "Slurm better") }'
}
echo
echo "| figure (median) | jgsched | Slurm | ratio |"
echo "|---|---|---|---|"
row "$N CLI submits while groups run" "$(med JGV submit)" "$(med SLV submit)" higher "/s"
row "$N trivial groups, first submit -> all ended" "$(med JGV e2e)" "$(med SLV e2e)" lower "s"
row "daemon CPU per trivial group (jgschedd / slurmctld)" "$(med JGV cpu_group)" "$(med SLV cpu_group)" lower "ms"
for q in $QUEUE_SIZES; do
    row "daemon CPU per pending submit (jgschedd / slurmctld), filling to $q" "$(med JGV "cpu_submit$q")" \
        "$(med SLV "cpu_submit$q")" lower "ms"
done
row "3-job group, submit -> every node running" "$(med JGV group3)" "$(med SLV group3)" lower "ms"
for q in $QUEUE_SIZES; do
    j=$(med JGV "queue$q")
    [ "${JGV[queue${q}_rc]}" = 0 ] || j="fails (exit ${JGV[queue${q}_rc]})"
    row "\`queue\` / \`squeue\`, $q pending" "$j" "$(med SLV "queue$q")" lower "ms"
done
row "CLI start-up CPU (\`--version\`)" "$(med JGV start_cpu)" "$(med SLV start_cpu)" lower "ms"
row "CLI start-up minor faults (\`--version\`)" "$(med JGV start_flt)" "$(med SLV start_flt)" lower ""
row "CPU of one submit (\`submit -d\` / \`sbatch\`)" "$(med JGV submit_cpu)" "$(med SLV submit_cpu)" lower "ms"
row "daemon VmHWM after the queue load" "$JG_HWM_Q" "$SL_HWM" lower "MiB"
awk -v c="$MIN_CPU" -v f="$MIN_FLT" -v j="$(med JGV start_cpu)" -v jf="$(med JGV start_flt)" 'BEGIN {
    printf "\nminimal libc program: %.3g ms CPU, %d faults; jgsched --version is %.2fx its CPU and %.2fx its faults\n", c/1000, f, j*1000/c, jf/f }'
echo "jgschedd VmHWM after the submit/e2e/3-job loads: $JG_HWM_RUN MiB"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
