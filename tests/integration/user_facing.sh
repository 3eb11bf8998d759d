#!/usr/bin/env bash
# user_facing.sh - what a user sees at the edges (issue 11): a queue of more
# than ten thousand groups lists whole, logs full of control characters print,
# logs mark attempts and exits, Python output streams, JGSCHED_SOCKET never
# starts a daemon, and the small messages of infra, logs and submit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# The disk-full instance below lives on a tmpfs of its own.
FULL_HOME=""
jg_extra_teardown() {
    [ -n "$FULL_HOME" ] || return 0
    JGSCHED_HOME=$FULL_HOME timeout 10 "$JGSCHED" daemon stop >/dev/null 2>&1
    local p
    for p in $(pgrep -f -- "$(jg_regex_escape "$FULL_HOME")" 2>/dev/null); do kill -9 "$p"; done
    sleep 0.2
    umount "$FULL_HOME" 2>/dev/null
    rmdir "$FULL_HOME" 2>/dev/null
}
# A declared capacity of 16 CPUs handed out 4 times (backends.local.oversubscribe).
JG_CONFIG='backends:
  local:
    capacity: {cpus: 16, memory: 64GB}
    oversubscribe: 4
    nat: false'
jg_setup
TOOLS="$(dirname "$0")/tools"
SOCK="$JGSCHED_HOME/jgsched.sock"

# ---- a queue of 10k+ groups lists whole, in pages
# Groups that can never fit end FAILED_NO_RESOURCE at submit: the cheapest way
# to fill the store through the daemon itself (nothing is launched).  They
# ended just now, so plain `queue` lists them too.
cat >"$JG_WORK/never-fits.yaml" <<'YAML'
name: never-fits
resources: {cpus: 100000}
run: echo never
YAML
N_BIG=${JG_QUEUE_GROUPS:-10500}   # fewer only to debug this script
python3 "$TOOLS/jgproto.py" "$SOCK" submit_many "$N_BIG" "$JG_WORK/never-fits.yaml" >"$JG_WORK/fill.out" 2>&1 ||
    fail "filling the store: $(cat "$JG_WORK/fill.out")"
expected_ids=$(seq 1 "$N_BIG")

jgc queue --json
[ "$RC" -eq 0 ] || fail "queue --json with $N_BIG groups exited $RC"
assert_eq "$(printf '%s' "$OUT" | jq -r '.[].id' | tr '\n' ' ')" "$(echo $expected_ids) " \
    "ids of queue --json (every group once, in order)"
ok "queue --json lists all $N_BIG groups once each, in id order"

jgc queue -a --json
[ "$RC" -eq 0 ] || fail "queue -a --json with $N_BIG groups exited $RC"
assert_eq "$(printf '%s' "$OUT" | jq -r '.[].id' | tr '\n' ' ')" "$(echo $expected_ids) " \
    "ids of queue -a --json"
assert_eq "$(printf '%s' "$OUT" | jq -r '[.[] | select(.jobs[0].name == "never-fits")] | length')" \
    "$N_BIG" "groups of queue -a --json carrying their job"
ok "queue -a --json lists all $N_BIG groups with their jobs"

jgc queue
[ "$RC" -eq 0 ] || fail "queue with $N_BIG groups exited $RC"
assert_eq "$(printf '%s\n' "$OUT" | awk 'NR > 1 { print $1 }' | tr '\n' ' ')" "$(echo $expected_ids) " \
    "ID column of the queue table"
ok "queue prints a table row for each of the $N_BIG groups, in order"

jgc queue -a --json --me
[ "$RC" -eq 0 ] || fail "queue --me exited $RC"
assert_eq "$(printf '%s' "$OUT" | jq length)" "$N_BIG" "groups of queue --me"
ok "queue --me pages too"

# ---- logs whose escaped form is six times larger than the output
# Three nodes of lines made of \x01 bytes: each escapes to \u0001, so one
# request's worth of them was more than the CLI's 1 MiB reply limit (exit 3).
cat >"$JG_WORK/ctl.yaml" <<'YAML'
name: ctl
num_nodes: 3
run: |
  for i in $(seq 1 40); do head -c 4000 /dev/zero | tr '\0' '\001'; echo; done
YAML
submit_follow "$JG_WORK/ctl.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "the control-character group exited $RC"
jgc logs "$GID"
[ "$RC" -eq 0 ] || fail "logs of output full of control characters exited $RC"
for r in 0 1 2; do
    assert_eq "$(printf '%s\n' "$OUT" | grep -a "^(ctl-$r) " | tr -cd '\001' | wc -c)" 160000 \
        "control characters of node ctl-$r in logs"
done
ok "logs prints 3 x 160000 control characters whole (exit 0)"

# ---- attempts and exits in logs
cat >"$JG_WORK/attempts.yaml" <<'YAML'
---
name: attempts
execution: parallel
---
name: flaky
resources:
  job_recovery: {max_restarts_on_errors: 2, recover_on_exit_codes: [29]}
run: |
  echo "flaky attempt $JGSCHED_ATTEMPT"
  [ "$JGSCHED_ATTEMPT" -ge 2 ] || exit 29
---
name: broken
run: |
  echo "broken says bye"
  exit 1
YAML
submit_follow "$JG_WORK/attempts.yaml"
ATT=$GID
wait_end "$ATT" 60
jgc logs "$ATT" flaky
[ "$RC" -eq 0 ] || fail "logs of the restarted job exited $RC"
assert_eq "$OUT" "(flaky-0) flaky attempt 1
(flaky-0) == attempt 2 (restart_job: flaky rank 0: exit 29 is in recover_on_exit_codes)
(flaky-0) flaky attempt 2
(flaky-0) == exit 0" "logs of a job restarted once"
ok "logs separates attempts with the policy's reason and ends with the exit"
jgc logs "$ATT" broken
assert_eq "$OUT" "(broken-0) broken says bye
(broken-0) == exit 1" "logs of a job that failed"
ok "logs ends a failed node's output with its exit code"

# ---- a group that never launched has no output, and says so
cp "$JG_WORK/never-fits.yaml" "$JG_WORK/never-fits-2.yaml"
jgc submit "$JG_WORK/never-fits-2.yaml" --infra local -d
NEVER=$(printf '%s' "$OUT" | head -n 1)
jgc logs "$NEVER"
assert_eq "$RC" 1 "exit status of logs of a group that never launched"
assert_contains "$ERR" "group $NEVER has no output: it never launched (FAILED_NO_RESOURCE" \
    "message of logs of a group that never launched"
ok "logs of a group that never launched says why and exits 1"

# ---- Python output streams to logs -f before the program exits
cat >"$JG_WORK/python.yaml" <<'YAML'
name: pyprint
run: |
  python3 -c 'import time; print("py-hello"); time.sleep(120)'
YAML
submit_detached "$JG_WORK/python.yaml"
PY=$GID
timeout 60 "$JGSCHED" logs -f "$PY" >"$JG_WORK/py.log" 2>&1 &
FOLLOW=$!
for ((i = 0; i < 150; i++)); do
    grep -q "py-hello" "$JG_WORK/py.log" && break
    sleep 0.2
done
grep -q "(pyprint-0) py-hello" "$JG_WORK/py.log" ||
    fail_group "$PY" "logs -f did not show the python print within 30 s: $(cat "$JG_WORK/py.log")"
assert_eq "$(job_state "$PY" pyprint)" RUNNING "state of the python job while its print is shown"
ok "logs -f shows a python print while the program still runs (PYTHONUNBUFFERED)"
jgc_ok cancel "$PY"
wait_end "$PY" 30
wait "$FOLLOW"

# ---- infra names its config file once
jgc_ok infra
assert_eq "$(printf '%s\n' "$OUT" | grep -c '^config: ')" 1 "lines 'config: ...' in infra"
ok "infra prints the config file once"

# ---- oversubscribe: admission hands out 4 CPUs per CPU; infra says so
assert_contains "$OUT" "capacity:      64 cpus, 64GB memory (declared in $JGSCHED_HOME/config.yaml, cpus oversubscribed 4 times)" \
    "capacity line of infra with oversubscribe"
assert_contains "$OUT" "oversubscribe: 4 CPUs handed out per CPU of the capacity" \
    "settings of infra with oversubscribe"
cat >"$JG_WORK/wide.yaml" <<'YAML'
name: wide
resources: {cpus: 40}
run: echo wide ran
YAML
submit_follow "$JG_WORK/wide.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "a 40-cpu node on 16 cpus oversubscribed 4 times exited $RC"
ok "oversubscribe 4 admits a 40-cpu node on a 16-cpu capacity, and infra shows it"

# ---- a group pinned to kubernetes is refused with the way to run it here
cat >"$JG_WORK/k8s.yaml" <<'YAML'
name: k8s-only
resources: {infra: kubernetes}
run: echo hi
YAML
jgc submit "$JG_WORK/k8s.yaml" -d
assert_eq "$RC" 2 "exit status of a submit pinned to kubernetes"
assert_contains "$ERR" "jgsched submit $JG_WORK/k8s.yaml --infra local" "hint of a kubernetes submit"
ok "a group refused for infra kubernetes is told to use --infra local"

# ---- JGSCHED_SOCKET names a daemon; it never starts one
TYPO="$JG_WORK/typo.sock"
LAST_CMD="JGSCHED_SOCKET=$TYPO jgsched queue"
OUT=$(JGSCHED_SOCKET=$TYPO timeout -k 5 30 "$JGSCHED" queue 2>"$JG_WORK/typo.err" </dev/null)
RC=$?
ERR=$(cat "$JG_WORK/typo.err")
assert_eq "$RC" 3 "exit status with a JGSCHED_SOCKET where nothing answers"
assert_contains "$ERR" "no jgschedd answers at $TYPO" "message for a mistyped JGSCHED_SOCKET"
assert_contains "$ERR" "never starts one" "message for a mistyped JGSCHED_SOCKET"
[ ! -e "$TYPO" ] || fail "a daemon was started at the mistyped socket $TYPO"
jgc_ok daemon status
assert_contains "$OUT" "pid:     $JG_DAEMON_PID" "the instance's daemon after the mistyped socket"
ok "a mistyped JGSCHED_SOCKET starts no daemon and says what to do (exit 3)"

# A second daemon for the same instance names the socket of the first.
LAST_CMD="JGSCHED_SOCKET=$JG_WORK/second.sock jgschedd"
OUT=""
ERR=$(JGSCHED_SOCKET=$JG_WORK/second.sock timeout -k 5 30 "$JGSCHEDD" 2>&1 </dev/null)
RC=$?
assert_eq "$RC" 1 "exit status of a second daemon for the same instance"
assert_contains "$ERR" "already serves the instance $JGSCHED_HOME, on socket $SOCK" \
    "lock message of a second daemon"
assert_contains "$ERR" "JGSCHED_SOCKET=$SOCK" "lock message of a second daemon"
ok "a second daemon for an instance names the socket where the first one answers"

# ---- a store that cannot write: the daemon failed (exit 4), not the YAML (2)
FULL_HOME=$(mktemp -d /tmp/jgfull.XXXXXX)
if mount -t tmpfs -o size=2m tmpfs "$FULL_HOME" 2>/dev/null; then
    printf 'backends:\n  local:\n    nat: false\n' >"$FULL_HOME/config.yaml"
    JGSCHED_HOME=$FULL_HOME timeout -k 5 30 "$JGSCHEDD" >"$JG_WORK/full.start" 2>&1 ||
        fail "jgschedd on the small tmpfs: $(cat "$JG_WORK/full.start")"
    JGSCHED_HOME=$FULL_HOME timeout 30 "$JGSCHED" queue >/dev/null 2>&1 || fail "queue on the small tmpfs"
    dd if=/dev/zero of="$FULL_HOME/filler" bs=4k >/dev/null 2>&1
    printf 'name: small\nrun: echo hi\n' >"$JG_WORK/small.yaml"
    LAST_CMD="jgsched submit small.yaml -d (disk full)"
    OUT=$(JGSCHED_HOME=$FULL_HOME timeout -k 5 30 "$JGSCHED" submit "$JG_WORK/small.yaml" \
        --infra local -d 2>"$JG_WORK/full.err" </dev/null)
    RC=$?
    ERR=$(cat "$JG_WORK/full.err")
    assert_eq "$RC" 4 "exit status of a submit the store could not write"
    assert_contains "$ERR" "full" "message of a submit the store could not write"
    ok "a submit the store cannot write exits 4 (the daemon failed), not 2"
else
    rmdir "$FULL_HOME"
    FULL_HOME=""
    echo "# skipped the disk-full submit: cannot mount a tmpfs here"
fi

jg_done
