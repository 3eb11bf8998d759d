#!/usr/bin/env bash
# phase5_edge.sh - seed plan Phase 5: a failing job (5.1), a job that can never
# fit (5.2), cancellation (5.3), a job without `run` (5.4) and duplicate names
# (5.5), on fast copies of the seed files (every sleep divided by 5).
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

# A name unique to this run, so the processes of our groups can be told apart
# from those of other instances on the same host.
TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)

# ---- 5.1 job failure: default policy, siblings continue
fast_copy "$JG_SEED/5_1_failure.yaml" "$JG_WORK/5_1.yaml"
submit_follow "$JG_WORK/5_1.yaml"
G51=$GID
[ "$RC" -eq 1 ] || fail_group "$G51" "submit of the failure group exited $RC, expected 1"
show_json "$G51"
assert_eq "$(sq 'grp.state')" FAILED "group state"
assert_eq "$(job_field failing-job state)" FAILED "failing-job state"
assert_eq "$(job_field failing-job exit_code)" 1 "failing-job exit code"
assert_eq "$(job_field success-job state)" SUCCEEDED "success-job state (default: a failed job does not stop its siblings)"
assert_eq "$(job_field success-job exit_code)" 0 "success-job exit code"
ok "5.1 failing-job FAILED (exit 1), success-job SUCCEEDED, group FAILED"

jgc_ok logs "$G51" failing-job
assert_contains "$OUT" "(failing-job-0) About to fail..." "logs of failing-job"
jgc_ok logs "$G51" success-job
assert_contains "$OUT" "(success-job-0) Success job completed" "logs of success-job"
ok "5.1 logs show 'About to fail...' and the sibling's completion"
assert_no_leftovers k8s-failure-test "$G51"

# ---- 5.2 resource unavailable: fails early, all or nothing.
check_5_2() {
    fast_copy "$JG_SEED/5_2_resource_unavailable.yaml" "$JG_WORK/5_2.yaml"
    jgc submit "$JG_WORK/5_2.yaml" --infra local -d
    if [[ $OUT =~ ^[0-9]+$ ]]; then
        # Stored, and failed at once by admission: submit -d says so on stderr
        # and exits 1; the group must end FAILED_NO_RESOURCE without anything
        # launched, and say why.
        [ "$RC" -eq 1 ] || fail "submit -d of a group that can never fit exited $RC, expected 1"
        contains_ci "$ERR" "cpus=1000" || fail "submit -d does not say what cannot fit: $ERR"
        G52=$OUT
        [[ $G52 =~ ^[0-9]+$ ]] || fail "submit -d printed '$G52', expected only a numeric id"
        wait_end "$G52" 15
        [ "$END_STATE" = FAILED_NO_RESOURCE ] || fail_group "$G52" "group ended $END_STATE, expected FAILED_NO_RESOURCE"
        show_json "$G52"
        why=$(sq '[grp.reason, (grp.jobs[].reason), (grp.events[]?.reason)] | map(select(. != null)) | join(" ")')
        contains_ci "$why" "cpu" || fail_group "$G52" "no reason mentions the cpus asked for: $why"
        [ -z "$(ev_first normal-job RUNNING)" ] || fail_group "$G52" "normal-job ran although the group could not fit"
        jgc logs "$G52"
        assert_not_contains "$OUT" "Normal job" "logs of the group that cannot fit"
    else
        # Rejected at submit: the message says what cannot fit, nothing is stored.
        all="$OUT $ERR"
        contains_ci "$all" "cpu" || fail "the error does not mention the cpus asked for"
        [ -z "$(queue_json | jq -r '.[] | select(.name == "k8s-resource-test") | .id')" ] ||
            fail "a group that was rejected at submit is in the queue"
    fi
    ok "5.2 a job that can never fit fails the group early, nothing launched"
}
check_5_2

# ---- 5.3 cancellation
C53=k8s-cancel-test-$TAG
submit_detached "$JG_SEED/5_3_cancel.yaml" -n "$C53"
G53=$GID
wait_state "$G53" RUNNING 20
wait_log "$G53" "Long job A starting" 10
wait_log "$G53" "Long job B starting" 10
before=$(pids_with_env "SKYPILOT_JOBGROUP_NAME=$C53" "JGSCHED_GROUP_ID=$G53" | wc -l)
[ "$before" -ge 2 ] || fail_group "$G53" "found $before processes of the running group (expected its shells and sleeps)"
ok "5.3 group RUNNING with both jobs started ($before processes)"

t0=$(date +%s)
jgc_ok cancel "$G53"
wait_state "$G53" CANCELLED 15
show_json "$G53"
assert_eq "$(job_field long-job-a state)" CANCELLED "long-job-a state"
assert_eq "$(job_field long-job-b state)" CANCELLED "long-job-b state"
ok "5.3 cancel: group and both jobs CANCELLED within $(($(date +%s) - t0)) s"
assert_no_leftovers "$C53" "$G53"
ok "5.3 cancel leaves no process behind (sleep 300 gone)"

# ---- 5.4 job without run
fast_copy "$JG_SEED/5_4_empty_run.yaml" "$JG_WORK/5_4.yaml"
submit_follow "$JG_WORK/5_4.yaml"
G54=$GID
[ "$RC" -eq 0 ] || fail_group "$G54" "submit of the empty-run group exited $RC, expected 0"
show_json "$G54"
assert_eq "$(sq 'grp.state')" SUCCEEDED "group state"
assert_eq "$(job_field empty-job state)" SUCCEEDED "empty-job state"
assert_eq "$(job_field normal-job state)" SUCCEEDED "normal-job state"
te=$(ev_first empty-job SUCCEEDED)
tn=$(ev_first normal-job SUCCEEDED)
if [ -n "$te" ] && [ -n "$tn" ]; then
    fle "$te" "$tn" || fail_group "$G54" "empty-job succeeded at $te, after normal-job ($tn)"
fi
jgc_ok logs "$G54" normal-job
assert_contains "$OUT" "(normal-job-0) Normal job" "logs of normal-job"
ok "5.4 empty-job SUCCEEDED at once, normal-job SUCCEEDED"

# ---- 5.5 duplicate names
jgc submit "$JG_SEED/5_5_duplicate_names.yaml" --infra local
assert_eq "$RC" 2 "exit status of submit with duplicate job names"
contains_ci "$ERR" duplicate || fail "stderr does not mention 'duplicate'"
assert_contains "$ERR" my-job "stderr of submit with duplicate names"
[ -z "$(queue_json | jq -r '.[] | select(.name == "k8s-duplicate-test") | .id')" ] ||
    fail "a group with duplicate job names was stored"
ok "5.5 duplicate job names rejected at submit, nothing stored"

jg_done
