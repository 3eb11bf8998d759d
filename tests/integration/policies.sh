#!/usr/bin/env bash
# policies.sh - the Lua policies at work in a running daemon, driven only
# through the CLI (docs/policies.md): seed 5.1 under default and fail-fast,
# seed 6.1 recovery (restart_job for a recover_on_exit_codes exit), seed 6.2
# simulated (a node's process group killed from outside: node_lost, recovered),
# SAME_INFRA refused at submit, primary_tasks with termination_delay, a policy
# whose on_node_exit raises (the default decision is used and the error is
# recorded with file:line), `policy reload` (installed policies only), and
# --policy given a relative path (read by the CLI, sent as text).
# Every decision is checked in the group's events (subject "policy").
# jq filters are single-quoted on purpose; `A && B || fail` is meant.
# shellcheck disable=SC2015,SC2016
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)

# policy_events WHAT: the reasons of the group's policy events WHAT in $SHOW.
policy_events() {
    sq 'grp.events[]? | select(.subject == "policy" and .what == $w) | .reason' --arg w "$1"
}

# job_event_ts JOB WHAT: timestamp of the first event WHAT whose subject is
# exactly "job JOB" in $SHOW (empty if none).
job_event_ts() {
    sq '[grp.events[]? | select(.subject == ("job " + $j) and .what == $w) | .ts] | min // empty' \
        --arg j "$1" --arg w "$2"
}

# ================================================================ 5.1 default vs fail-fast
# Both groups at once: under default the sibling runs to its end; under
# fail-fast the first failure that stands fails the group and stops the sibling.
fast_copy "$JG_SEED/5_1_failure.yaml" "$JG_WORK/5_1.yaml"
submit_detached "$JG_WORK/5_1.yaml" -n "fail-default-$TAG"
G51D=$GID
submit_detached "$JG_WORK/5_1.yaml" -n "fail-fast-$TAG" --policy fail-fast
G51F=$GID

wait_end "$G51F" 30
show_json "$G51F"
assert_eq "$(sq 'grp.policy')" fail-fast "policy of the fail-fast group"
assert_eq "$(sq 'grp.state')" FAILED "state of the group under fail-fast"
assert_eq "$(job_field failing-job state)" FAILED "failing-job state under fail-fast"
assert_eq "$(job_field failing-job exit_code)" 1 "failing-job exit code under fail-fast"
assert_eq "$(job_field success-job state)" CANCELLED "success-job state under fail-fast (stopped by fail_group)"
d=$(policy_events "on_node_exit: fail_group")
[ -n "$d" ] || fail_group "$G51F" "no policy event 'on_node_exit: fail_group' under fail-fast"
assert_contains "$d" "fail-fast: failing-job rank 0 exited (exit 1)" "reason of the fail_group decision"
assert_contains "$(sq 'grp.reason')" "fail-fast: failing-job" "reason of the group"
jgc_ok logs "$G51F"
assert_contains "$OUT" "(failing-job-0) About to fail..." "logs under fail-fast"
assert_contains "$OUT" "(success-job-0) Success job running" "logs under fail-fast"
assert_not_contains "$OUT" "Success job completed" "logs under fail-fast (success-job was stopped early)"
ok "5.1 fail-fast: failing-job FAILED exit 1, success-job CANCELLED before completing, group FAILED, decision 'on_node_exit: fail_group' recorded"

wait_end "$G51D" 30
show_json "$G51D"
assert_eq "$(sq 'grp.state')" FAILED "state of the group under default"
assert_eq "$(job_field failing-job state)" FAILED "failing-job state under default"
assert_eq "$(job_field failing-job exit_code)" 1 "failing-job exit code under default"
assert_eq "$(job_field success-job state)" SUCCEEDED "success-job state under default"
assert_eq "$(job_field success-job exit_code)" 0 "success-job exit code under default"
assert_eq "$(policy_events "on_node_exit: fail_group")" "" "fail_group decisions under default"
jgc_ok logs "$G51D" success-job
assert_contains "$OUT" "(success-job-0) Success job completed" "logs of success-job under default"
ok "5.1 default: failing-job FAILED exit 1, success-job SUCCEEDED (runs to its end), group FAILED"
assert_no_leftovers "fail-default-$TAG" "$G51D" "fail-fast-$TAG" "$G51F"

# ================================================================ 6.1 recovery
# The node writes /tmp/recovery_marker in attempt 1 and finds it in attempt 2:
# this needs the per-node /tmp kept across attempts.  Without it the marker
# lands in the host's /tmp (removed below if this test put it there).
host_marker_before=0
[ -e /tmp/recovery_marker ] && host_marker_before=1
fast_copy "$JG_SEED/6_1_recovery.yaml" "$JG_WORK/6_1.yaml"
submit_follow "$JG_WORK/6_1.yaml"
G61=$GID
rc61=$RC
host_marker_after=0
[ -e /tmp/recovery_marker ] && host_marker_after=1
[ "$host_marker_before" = 0 ] && [ "$host_marker_after" = 1 ] && rm -f /tmp/recovery_marker
[ "$rc61" -eq 0 ] || fail_group "$G61" "submit of 6_1_recovery.yaml exited $rc61, expected 0"
show_json "$G61"
assert_eq "$(sq 'grp.state')" SUCCEEDED "state of the recovery group"
assert_eq "$(job_field recoverable-job state)" SUCCEEDED "recoverable-job state"
assert_eq "$(job_field recoverable-job attempt)" 2 "recoverable-job attempt"
assert_eq "$(job_field recoverable-job restarts)" 0 "recoverable-job restarts (exit 29 is not charged)"
assert_eq "$(job_field normal-job state)" SUCCEEDED "normal-job state"
assert_eq "$(job_field normal-job attempt)" 1 "normal-job attempt"
t_rec=$(job_event_ts recoverable-job RECOVERING)
t_ok=$(job_event_ts recoverable-job SUCCEEDED)
[ -n "$t_rec" ] || fail_group "$G61" "no RECOVERING event of job recoverable-job"
[ -n "$t_ok" ] && fle "$t_rec" "$t_ok" || fail_group "$G61" "recoverable-job SUCCEEDED ($t_ok) not after RECOVERING ($t_rec)"
d=$(policy_events "on_node_exit: restart_job")
assert_contains "$d" "recoverable-job rank 0: exit 29 is in recover_on_exit_codes" "reason of the restart_job decision"
jgc_ok logs "$G61" recoverable-job
assert_contains "$OUT" "(recoverable-job-0) First attempt, simulating recoverable error" "logs of recoverable-job"
assert_contains "$OUT" "(recoverable-job-0) Recovery successful!" "logs of recoverable-job"
[ "$host_marker_before" = 1 ] || [ "$host_marker_after" = 0 ] ||
    fail "6.1 the node's /tmp/recovery_marker landed in the host's /tmp (no per-node /tmp)"
ok "6.1 recoverable-job RECOVERING then SUCCEEDED on attempt 2 ('Recovery successful!'), normal-job SUCCEEDED, group SUCCEEDED, 'on_node_exit: restart_job' recorded"

# ================================================================ 6.2 a node killed from outside
cat >"$JG_WORK/lost.yaml" <<'EOF'
---
name: lost-node
placement: SAME_INFRA
execution: parallel
---
name: victim
run: |
  echo "victim attempt $JGSCHED_ATTEMPT"
  if [ "$JGSCHED_ATTEMPT" = 1 ]; then
    sleep 30
  fi
  echo "victim done"
---
name: bystander
run: |
  sleep 4
  echo "bystander done"
EOF
submit_detached "$JG_WORK/lost.yaml" -n "lost-node-$TAG"
G62=$GID
wait_state "$G62" RUNNING 20
wait_log "$G62" "victim attempt 1" 10
vpid=$(pgrep -f -- "$(jg_regex_escape "$JGSCHED_HOME/state/groups/$G62/victim-0")" | head -n 1)
[ -n "$vpid" ] || fail_group "$G62" "no process of node victim-0 found"
vpgid=$(ps -o pgid= -p "$vpid" | tr -d ' ')
[[ $vpgid =~ ^[0-9]+$ ]] && [ "$vpgid" -gt 1 ] && [ "$vpgid" != "$(ps -o pgid= -p $$ | tr -d ' ')" ] ||
    fail_group "$G62" "bad process group '$vpgid' of node victim-0 (pid $vpid)"
kill -9 -- "-$vpgid" || fail_group "$G62" "kill -9 -- -$vpgid failed"
wait_end "$G62" 30
show_json "$G62"
assert_eq "$(sq 'grp.state')" SUCCEEDED "state of the group after a lost node"
assert_eq "$(job_field victim state)" SUCCEEDED "victim state"
assert_eq "$(job_field victim attempt)" 2 "victim attempt"
assert_eq "$(job_field victim recoveries)" 1 "victim recoveries"
assert_eq "$(job_field bystander state)" SUCCEEDED "bystander state"
assert_eq "$(job_field bystander attempt)" 1 "bystander attempt (not restarted)"
lost=$(sq 'grp.events[]? | select(.subject == "node victim-0") | .reason')
contains_ci "$lost" "node lost" || fail_group "$G62" "no event of node victim-0 says 'node lost'"
d=$(policy_events "on_node_exit: restart_job")
assert_contains "$d" "victim rank 0: node_lost" "reason of the restart_job decision"
[ -n "$(job_event_ts victim RECOVERING)" ] || fail_group "$G62" "no RECOVERING event of job victim"
jgc_ok logs "$G62" victim
assert_contains "$OUT" "(victim-0) victim attempt 2" "logs of victim"
assert_contains "$OUT" "(victim-0) victim done" "logs of victim"
ok "6.2 kill -9 of a node's process group: node lost, 'on_node_exit: restart_job' (node_lost), RECOVERING, attempt 2 SUCCEEDED, group SUCCEEDED"
assert_no_leftovers "lost-node-$TAG" "$G62"

# ================================================================ SAME_INFRA
cat >"$JG_WORK/mixed.yaml" <<EOF
---
name: mixed-infra-$TAG
placement: SAME_INFRA
execution: parallel
---
name: on-local
resources:
  infra: local
run: echo local
---
name: on-kube
resources:
  infra: kubernetes
run: echo kube
EOF
jgc submit "$JG_WORK/mixed.yaml" -d
assert_eq "$RC" 2 "exit status of submit of jobs pinning local and kubernetes"
msg="$OUT $ERR"
for w in on-local on-kube local kubernetes SAME_INFRA; do
    assert_contains "$msg" "$w" "the SAME_INFRA refusal"
done
assert_eq "$(queue_json | jq --arg n "mixed-infra-$TAG" '[.[] | select(.name == $n)] | length')" 0 \
    "groups named mixed-infra-$TAG in the queue"
jgc queue -a --json
assert_not_contains "$OUT" "mixed-infra-$TAG" "queue -a"
ok "SAME_INFRA: jobs pinning local and kubernetes are refused at submit (exit 2) naming both; nothing stored"

# ================================================================ primary_tasks + termination_delay
cat >"$JG_WORK/primary.yaml" <<'EOF'
---
name: primary
placement: SAME_INFRA
execution: parallel
primary_tasks: [trainer]
termination_delay: 3s
---
name: trainer
run: |
  sleep 2
  echo "trainer done"
  exit ${TRAINER_EXIT:-0}
---
name: server
run: |
  echo "server up"
  sleep 60
  echo "server finished on its own"
EOF
# The same file with a failing trainer.
sed 's/exit ${TRAINER_EXIT:-0}/exit 1/' "$JG_WORK/primary.yaml" >"$JG_WORK/primary-fail.yaml"
submit_detached "$JG_WORK/primary.yaml" -n "primary-ok-$TAG"
GPO=$GID
submit_detached "$JG_WORK/primary-fail.yaml" -n "primary-fail-$TAG"
GPF=$GID

wait_end "$GPF" 30
show_json "$GPF"
assert_eq "$(sq 'grp.state')" FAILED "state of the group whose primary failed"
assert_eq "$(job_field trainer state)" FAILED "trainer state (exit 1)"
assert_eq "$(job_field server state)" CANCELLED "server state after the primary failed"
t_end=$(job_event_ts trainer FAILED)
t_cancel=$(job_event_ts server CANCELLED)
[ -n "$t_end" ] && [ -n "$t_cancel" ] || fail_group "$GPF" "no FAILED event of trainer or CANCELLED event of server"
gap=$(fsub "$t_cancel" "$t_end")
fle 0 "$gap" && fle "$gap" 2 || fail_group "$GPF" "server cancelled ${gap}s after trainer failed, expected at once (< 2 s)"
assert_contains "$(policy_events "on_job_end: cancel")" "one did not succeed" "reason of the on_job_end decision"
ok "primary_tasks: primary failed -> auxiliary CANCELLED ${gap}s later (at once), group FAILED"

wait_end "$GPO" 30
show_json "$GPO"
assert_eq "$(sq 'grp.state')" SUCCEEDED "state of the group whose primary succeeded"
assert_eq "$(job_field trainer state)" SUCCEEDED "trainer state"
assert_eq "$(job_field server state)" CANCELLED "server state after termination_delay"
t_end=$(job_event_ts trainer SUCCEEDED)
t_cancel=$(job_event_ts server CANCELLED)
[ -n "$t_end" ] && [ -n "$t_cancel" ] || fail_group "$GPO" "no SUCCEEDED event of trainer or CANCELLED event of server"
gap=$(fsub "$t_cancel" "$t_end")
fle 2.5 "$gap" && fle "$gap" 6 || fail_group "$GPO" "server cancelled ${gap}s after trainer ended, expected termination_delay 3s (2.5..6)"
assert_contains "$(policy_events "on_job_end: cancel")" "every primary job succeeded" "reason of the on_job_end decision"
jgc_ok logs "$GPO" server
assert_contains "$OUT" "(server-0) server up" "logs of server"
assert_not_contains "$OUT" "server finished on its own" "logs of server"
ok "primary_tasks: primary succeeded -> auxiliary CANCELLED ${gap}s later (termination_delay 3s), group SUCCEEDED"
assert_no_leftovers "primary-ok-$TAG" "$GPO" "primary-fail-$TAG" "$GPF"

# ================================================================ a policy whose on_node_exit raises
# Line 3 raises on every call: each decision falls back to default.lua's, so
# exit 29 (recover_on_exit_codes) is still restarted and the group succeeds.
mkdir -p "$JG_WORK/site"
FAULTY="$JG_WORK/site/faulty.lua"
cat >"$FAULTY" <<'EOF'
return {
  on_node_exit = function(group, job, event)
    return job.job_recovery.nothing.here
  end,
}
EOF
cat >"$JG_WORK/flaky.yaml" <<'EOF'
---
name: faulty-policy
placement: SAME_INFRA
execution: parallel
---
name: flaky
resources:
  job_recovery:
    recover_on_exit_codes: [29]
run: |
  echo "flaky attempt $JGSCHED_ATTEMPT"
  if [ "$JGSCHED_ATTEMPT" = 1 ]; then
    exit 29
  fi
---
name: steady
run: echo "steady done"
EOF
submit_follow "$JG_WORK/flaky.yaml" --policy "$FAULTY"
GFP=$GID
[ "$RC" -eq 0 ] || fail_group "$GFP" "submit with a raising policy exited $RC, expected 0 (default's decision: restart)"
show_json "$GFP"
assert_eq "$(sq 'grp.state')" SUCCEEDED "state of the group under a raising policy"
assert_eq "$(job_field flaky state)" SUCCEEDED "flaky state"
assert_eq "$(job_field flaky attempt)" 2 "flaky attempt (default restarted it)"
assert_eq "$(job_field steady state)" SUCCEEDED "steady state"
errs=$(policy_events error)
[ -n "$errs" ] || fail_group "$GFP" "no policy 'error' event"
assert_contains "$errs" "on_node_exit: faulty.lua:3: attempt to index a nil value" "the policy error event"
assert_contains "$(policy_events "on_node_exit: restart_job")" "flaky rank 0: exit 29 is in recover_on_exit_codes" \
    "the default decision after the error"
ok "a policy raising in on_node_exit: error event names faulty.lua:3, default's decision used (restart, group SUCCEEDED)"

# ================================================================ policy reload
# Reload re-reads the installed policies.  A policy a user submitted as a file
# was read by the CLI and lives in the daemon as text: editing the file
# afterwards (here: breaking it) changes nothing, and reload does not read it.
cat >"$FAULTY" <<'EOF'
return {
  on_node_exit = function(group, job, event)
    return "continue"
  end
  priority = 1,
}
EOF
jgc policy reload
assert_eq "$RC" 0 "exit status of policy reload"
assert_contains "$OUT" "default: reloaded" "policy reload output"
assert_contains "$OUT" "fail-fast: reloaded" "policy reload output"
assert_not_contains "$OUT" "faulty" "policy reload output (a submitted policy is not re-read from its file)"
ok "policy reload answers 'reloaded' for the installed policies and never reads a user's file"

# ================================================================ --policy with a relative path
# The CLI reads the file (relative to its own working directory) and sends its
# text: the daemon never opens it.
mkdir -p "$JG_WORK/rel"
cat >"$JG_WORK/rel/mine.lua" <<'EOF'
return {
  on_node_exit = function(group, job, event)
    return { action = "fail_group", reason = "relative policy decided" }
  end,
}
EOF
cat >"$JG_WORK/one.yaml" <<'EOF'
---
name: relative-policy
placement: SAME_INFRA
execution: parallel
---
name: one
run: echo "one done"
EOF
cd "$JG_WORK" || fail "cd $JG_WORK"
jgc submit one.yaml --infra local --policy rel/mine.lua
cd - >/dev/null || fail "cd back"
assert_ne "$RC" 2 "exit status of submit --policy rel/mine.lua (refused)"
assert_contains "$OUT" "relative policy decided" "submit --policy rel/mine.lua (the policy's decision)"
ok "submit --policy with a relative path uses that file (read by the CLI)"

jg_done
