#!/usr/bin/env bash
# lifecycle.sh - what the group lifecycle records and how the CLI reports it:
# per-job exit codes, a job killed by a signal, cancel of a just-submitted
# group, cancel -a, `logs -f` ending with the group, submit's exit codes, and
# recovery of a job that exits with a recoverable code (examples/recovery.yaml).
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)

# ---- exit codes recorded per job; submit exits 1 when the group failed
cat >"$JG_WORK/exit.yaml" <<'EOF'
---
name: exit-codes
placement: SAME_INFRA
execution: parallel
---
name: three
run: |
  echo "exiting with 3"
  exit 3
---
name: zero
run: |
  echo "exiting with 0"
EOF
submit_follow "$JG_WORK/exit.yaml"
GX=$GID
assert_eq "$RC" 1 "exit status of submit when a job failed"
show_json "$GX"
assert_eq "$(sq 'grp.state')" FAILED "group state"
assert_eq "$(job_field three state)" FAILED "job three state"
assert_eq "$(job_field three exit_code)" 3 "job three exit code"
assert_eq "$(job_field zero state)" SUCCEEDED "job zero state"
assert_eq "$(job_field zero exit_code)" 0 "job zero exit code"
assert_eq "$(sq 'grp.nodes[] | select(.job == "three") | .exit_code')" 3 "exit code of node three-0"
ok "exit 3 -> job FAILED with exit_code 3 (job and node), sibling SUCCEEDED exit 0, submit exit 1"

# ---- a job killed by a signal
cat >"$JG_WORK/signal.yaml" <<'EOF'
---
name: killed
placement: SAME_INFRA
execution: parallel
---
name: victim
run: |
  echo "about to be killed"
  kill -9 $$
  echo "still alive"
EOF
submit_follow "$JG_WORK/signal.yaml"
GK=$GID
assert_eq "$RC" 1 "exit status of submit when a job was killed"
show_json "$GK"
assert_eq "$(sq 'grp.state')" FAILED "group state"
assert_eq "$(job_field victim state)" FAILED "state of the killed job"
assert_eq "$(job_field victim exit_code)" 137 "exit code of a job killed by SIGKILL (128+9)"
jgc_ok logs "$GK"
assert_contains "$OUT" "(victim-0) about to be killed" "logs of the killed job"
assert_not_contains "$OUT" "still alive" "logs of the killed job"
ok "a job killed by SIGKILL is FAILED with exit_code 137"

# ---- submit exits 0 on success; -d prints only the id
cat >"$JG_WORK/hello.yaml" <<'EOF'
---
name: hello
placement: SAME_INFRA
execution: parallel
---
name: greeter
run: echo "hello from $(hostname)"
EOF
submit_follow "$JG_WORK/hello.yaml"
assert_eq "$RC" 0 "exit status of submit of a group that succeeds"
assert_eq "$GNAME" hello "group name on the Submitted line"
submit_detached "$JG_WORK/hello.yaml" -n hello-again
wait_state "$GID" SUCCEEDED 20
ok "submit exits 0 when the group succeeds; submit -d prints only the numeric id"

# ---- cancel of a just-submitted group: its run never starts
mkdir -p "$JG_WORK/early"
cat >"$JG_WORK/early.yaml" <<EOF
---
name: early-cancel-$TAG
placement: SAME_INFRA
execution: parallel
---
name: slow
setup: |
  echo "setting up"
  sleep 5
run: |
  touch $JG_WORK/early/ran
  sleep 60
---
name: other
run: |
  touch $JG_WORK/early/ran
  sleep 60
EOF
submit_detached "$JG_WORK/early.yaml"
GE=$GID
jgc_ok cancel "$GE"
wait_state "$GE" CANCELLED 15
show_json "$GE"
assert_eq "$(job_field slow state)" CANCELLED "state of job slow"
assert_eq "$(job_field other state)" CANCELLED "state of job other"
[ ! -e "$JG_WORK/early/ran" ] || fail_group "$GE" "a run started although the group was cancelled during setup"
assert_no_leftovers "early-cancel-$TAG" "$GE"
ok "cancel of a just-submitted group: CANCELLED, its jobs CANCELLED, no run started, nothing left"

# ---- cancel -a takes down every active group
cat >"$JG_WORK/long.yaml" <<'EOF'
---
name: long
placement: SAME_INFRA
execution: parallel
---
name: sleeper
run: |
  echo "sleeping"
  sleep 120
EOF
submit_detached "$JG_WORK/long.yaml" -n "long-a-$TAG"
GA=$GID
submit_detached "$JG_WORK/long.yaml" -n "long-b-$TAG"
GB=$GID
wait_state "$GA" RUNNING 20
wait_state "$GB" RUNNING 20
jgc_ok cancel -a
wait_state "$GA" CANCELLED 15
wait_state "$GB" CANCELLED 15
assert_no_leftovers "long-a-$TAG" "$GA" "long-b-$TAG" "$GB"
ok "cancel -a cancels every active group"

# ---- a following submit exits 1 when its group is cancelled
timeout -k 5 60 "$JGSCHED" submit "$JG_WORK/long.yaml" -n "long-c-$TAG" --infra local \
    >"$JG_WORK/follow.out" 2>"$JG_WORK/follow.err" </dev/null &
fpid=$!
GC=""
for ((i = 0; i < 50; i++)); do
    GC=$(sed -n '1s/^Submitted group \([0-9][0-9]*\) .*/\1/p' "$JG_WORK/follow.out")
    [ -n "$GC" ] && break
    sleep 0.2
done
[ -n "$GC" ] || fail "no 'Submitted group' line from a following submit: $(cat "$JG_WORK/follow.out" "$JG_WORK/follow.err")"
wait_state "$GC" RUNNING 20
jgc_ok cancel "$GC"
wait "$fpid"
frc=$?
LAST_CMD="jgsched submit long.yaml -n long-c-$TAG --infra local (in background)"
OUT=$(cat "$JG_WORK/follow.out")
ERR=$(cat "$JG_WORK/follow.err")
RC=$frc
assert_eq "$frc" 1 "exit status of a following submit whose group was cancelled"
ok "a following submit exits 1 when its group is cancelled"

# ---- logs -f follows the group and ends when it ends
cat >"$JG_WORK/ticker.yaml" <<'EOF'
---
name: ticker
placement: SAME_INFRA
execution: parallel
---
name: ticker
run: |
  for i in 1 2 3; do
    echo "tick $i"
    sleep 1
  done
  echo "ticker done"
EOF
submit_detached "$JG_WORK/ticker.yaml"
GT=$GID
timeout -k 5 30 "$JGSCHED" logs "$GT" -f >"$JG_WORK/follow-logs.out" 2>"$JG_WORK/follow-logs.err" </dev/null &
lpid=$!
wait "$lpid"
lrc=$?
st=$(group_state "$GT")
LAST_CMD="jgsched logs $GT -f"
OUT=$(cat "$JG_WORK/follow-logs.out")
ERR=$(cat "$JG_WORK/follow-logs.err")
RC=$lrc
[ "$lrc" -ne 124 ] || fail "logs -f did not end within 30 s after its group ($st) started"
assert_eq "$lrc" 0 "exit status of logs -f"
is_terminal "$st" || fail_group "$GT" "logs -f ended while the group was still $st"
for n in "tick 1" "tick 2" "tick 3" "ticker done"; do
    assert_eq "$(grep -c "^(ticker-0) $n\$" "$JG_WORK/follow-logs.out")" 1 "count of '(ticker-0) $n' in logs -f"
done
ok "logs -f prints every line once and ends when the group ends"

# ---- recovery: a job exiting with a recover_on_exit_codes code is restarted
submit_follow "$JG_EXAMPLES/recovery.yaml"
GR=$GID
[ "$RC" -eq 0 ] || fail_group "$GR" "examples/recovery.yaml exited $RC, expected 0 after recovery"
show_json "$GR"
assert_eq "$(sq 'grp.state')" SUCCEEDED "state of the recovered group"
assert_eq "$(job_field flaky state)" SUCCEEDED "state of job flaky"
assert_eq "$(job_field flaky attempt)" 2 "attempt of job flaky"
assert_eq "$(job_field steady attempt)" 1 "attempt of job steady (not restarted)"
jgc_ok logs "$GR" flaky
assert_contains "$OUT" "recovered on attempt 2" "logs of job flaky"
ok "a job exiting 29 (recover_on_exit_codes) is restarted and succeeds on attempt 2"

jg_done
