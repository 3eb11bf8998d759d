#!/usr/bin/env bash
# phase8_scale.sh - seed plan Phase 8: five jobs of one group run at the same
# time (8.1), and two groups submitted concurrently run independently (8.2),
# on fast copies of the seed files (every sleep divided by 5).
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

# ---- 8.1 many jobs in one group
fast_copy "$JG_SEED/8_1_scale.yaml" "$JG_WORK/8_1.yaml"
submit_follow "$JG_WORK/8_1.yaml"
G81=$GID
[ "$RC" -eq 0 ] || fail_group "$G81" "submit of the 5-job group exited $RC, expected 0"
show_json "$G81"
assert_eq "$(sq 'grp.state')" SUCCEEDED "group state"
assert_eq "$(sq 'grp.jobs | length')" 5 "number of jobs"
for i in 1 2 3 4 5; do
    assert_eq "$(job_field "job-$i" state)" SUCCEEDED "job-$i state"
done
ok "8.1 all 5 jobs SUCCEEDED"

# Every job's [RUNNING, SUCCEEDED] interval overlaps every other one: the latest
# start comes before the earliest end, so all five ran at one moment.
latest_start=""
earliest_end=""
for i in 1 2 3 4 5; do
    s=$(ev_first "job-$i" RUNNING)
    e=$(ev_last "job-$i" SUCCEEDED)
    { [ -n "$s" ] && [ -n "$e" ]; } || fail_group "$G81" "job-$i lacks a RUNNING ($s) or SUCCEEDED ($e) event"
    fle "$s" "$e" || fail_group "$G81" "job-$i ended ($e) before it started ($s)"
    if [ -z "$latest_start" ] || fle "$latest_start" "$s"; then latest_start=$s; fi
    if [ -z "$earliest_end" ] || fle "$e" "$earliest_end"; then earliest_end=$e; fi
done
fle "$latest_start" "$earliest_end" ||
    fail_group "$G81" "jobs did not all run at once: last start $latest_start after first end $earliest_end"
ok "8.1 all 5 jobs were RUNNING at the same time"

jgc_ok logs "$G81"
for i in 1 2 3 4 5; do
    assert_contains "$OUT" "(job-$i-0) Job $i" "logs of the 5-job group"
done
ok "8.1 logs of all 5 jobs"
assert_no_leftovers k8s-scale-test "$G81"
ok "8.1 nothing left running"

# ---- 8.2 concurrent groups
fast_copy "$JG_SEED/2_1_test_job_group.yaml" "$JG_WORK/2_1.yaml"
declare -a PIDS RCS IDS
for g in 1 2; do
    timeout -k 5 90 "$JGSCHED" submit "$JG_WORK/2_1.yaml" -n "group-$g" --infra local \
        >"$JG_WORK/submit-$g.out" 2>"$JG_WORK/submit-$g.err" </dev/null &
    PIDS[g]=$!
done
for g in 1 2; do
    wait "${PIDS[g]}"
    RCS[g]=$?
done
for g in 1 2; do
    LAST_CMD="jgsched submit 2_1.yaml -n group-$g --infra local (in background)"
    OUT=$(cat "$JG_WORK/submit-$g.out")
    ERR=$(cat "$JG_WORK/submit-$g.err")
    RC=${RCS[g]}
    [ "$RC" -eq 0 ] || fail "concurrent submit of group-$g exited $RC, expected 0"
    first=$(printf '%s\n' "$OUT" | head -n 1)
    [[ $first =~ ^Submitted\ group\ ([0-9]+)\ \(group-$g\)$ ]] ||
        fail "first line of the submit of group-$g: '$first'"
    IDS[g]=${BASH_REMATCH[1]}
done
assert_ne "${IDS[1]}" "${IDS[2]}" "ids of the two concurrent groups"
ok "8.2 two concurrent submits both exit 0, with distinct ids (${IDS[1]}, ${IDS[2]})"

q=$(queue_json)
for g in 1 2; do
    id=${IDS[g]}
    assert_eq "$(printf '%s' "$q" | jq -r --argjson id "$id" '.[] | select(.id == $id) | .name')" \
        "group-$g" "name of group $id in queue --json"
    assert_eq "$(printf '%s' "$q" | jq -r --argjson id "$id" '.[] | select(.id == $id) | .state')" \
        SUCCEEDED "state of group-$g in queue --json"
done
jgc_ok queue
assert_contains "$OUT" "group-1" "queue table"
assert_contains "$OUT" "group-2" "queue table"
ok "8.2 the queue shows both groups by name, both SUCCEEDED"

for g in 1 2; do
    id=${IDS[g]}
    jgc_ok logs "$id"
    assert_contains "$OUT" "(job-a-0) SKYPILOT_JOBGROUP_NAME: group-$g" "logs of group-$g"
    assert_contains "$OUT" "(job-b-0) SKYPILOT_JOBGROUP_NAME: group-$g" "logs of group-$g"
    other=$((3 - g))
    assert_not_contains "$OUT" "group-$other" "logs of group-$g"
    show_json "$id"
    assert_eq "$(sq '[grp.nodes[].hostname] | sort | join(" ")')" \
        "job-a-0.group-$g job-b-0.group-$g" "hostnames of group-$g"
    assert_no_leftovers "group-$g" "$id"
done
ok "8.2 each group sees its own name and hostnames, no interference, nothing left running"

jg_done
