#!/usr/bin/env bash
# user_facing.sh - what a user sees at the edges (issue 11): a queue of more
# than ten thousand groups lists whole, logs full of control characters print,
# logs mark attempts and exits, Python output streams, JGSCHED_SOCKET never
# starts a daemon, and the small messages of infra, logs and submit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
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

jg_done
