#!/usr/bin/env bash
# phase1_validate.sh - seed plan Phase 1.1 (YAML parsing) and 5.5 (duplicate
# names), through `jgsched validate` and `jgsched submit`: every row of the
# edge-case table gives the right verdict, exit code 2 and messages naming
# file:line for the invalid ones, nothing is stored after a rejected submit, and
# every seed YAML and every example validates.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

# expect_invalid FILE LINES NEEDLE...: validate and submit both reject FILE with
# exit 2; stderr names FILE:<one of LINES> (LINES: "a|b|..." or "" for any
# line) and contains every NEEDLE (case-insensitive).
expect_invalid() {
    local file=$1 lines=$2 base n verb
    shift 2
    base=$(basename "$file")
    for verb in validate submit; do
        if [ "$verb" = validate ]; then
            jgc validate "$file"
        else
            jgc submit "$file" --infra local
        fi
        [ "$RC" -eq 2 ] || fail "$verb $base: exit $RC, expected 2"
        [ -n "$ERR" ] || fail "$verb $base: nothing on stderr"
        if [ -n "$lines" ]; then
            [[ $ERR =~ $base:($lines)([^0-9]|$) ]] ||
                fail "$verb $base: no message names $base:LINE with LINE in ($lines)"
        else
            [[ $ERR =~ $base:[0-9]+ ]] || fail "$verb $base: no message names $base:LINE"
        fi
        for n in "$@"; do
            contains_ci "$ERR" "$n" || fail "$verb $base: stderr does not mention '$n'"
        done
    done
}

# Nothing may have been stored by the rejected submits above.
expect_queue_empty() {
    local q
    q=$(queue_json) || fail "queue --json failed"
    [ "$(printf '%s' "$q" | jq length)" = 0 ] || fail "queue is not empty after rejected submits: $q"
}

# ---- Phase 1.1 table: invalid rows
expect_invalid "$JG_SEED/1_1_missing_name.yaml" '10|11|12|13' name
ok "1.1 missing job name: rejected, message names file:line and 'name'"

expect_invalid "$JG_SEED/1_1_duplicate_names.yaml" '10|11' duplicate job-a
ok "1.1 duplicate job names: rejected, message names the second job's line"

expect_invalid "$JG_SEED/1_1_invalid_placement.yaml" '3' placement INVALID
ok "1.1 invalid placement: rejected at the placement line"

expect_invalid "$JG_SEED/1_1_empty_group.yaml" ''
ok "1.1 empty group (header only): rejected"

expect_invalid "$JG_SEED/1_1_chain.yaml" '' chain
ok "1.1 header with only a name is a chain, not a JobGroup: rejected mentioning chain"

# ---- 5.5 duplicate names at submit
expect_invalid "$JG_SEED/5_5_duplicate_names.yaml" '11|12' duplicate my-job
ok "5.5 duplicate names rejected by validate and submit"

# ---- several errors: all of them are reported, not just the first
cat >"$JG_WORK/two_errors.yaml" <<'EOF'
---
name: two-errors
placement: SOMEWHERE
execution: parallel
---
name: job-a
run: echo a
---
name: job-a
run: echo b
EOF
expect_invalid "$JG_WORK/two_errors.yaml" '' placement duplicate
[[ $ERR =~ two_errors\.yaml:3([^0-9]|$) ]] || fail "the placement error does not name line 3"
[[ $ERR =~ two_errors\.yaml:(8|9)([^0-9]|$) ]] || fail "the duplicate-name error does not name line 8 or 9"
ok "every error of a file is reported, each with its own line"

# ---- unknown keys are errors, with a suggestion when close
cat >"$JG_WORK/typo.yaml" <<'EOF'
---
name: typo-group
placement: SAME_INFRA
execution: parallel
---
name: job-a
num_node: 2
run: echo a
EOF
expect_invalid "$JG_WORK/typo.yaml" '7' num_node num_nodes
ok "an unknown key is an error naming its line and suggesting the close key"

expect_queue_empty
ok "nothing is stored after rejected submits (queue empty)"

# ---- a file that does not exist
jgc validate "$JG_WORK/no-such-file.yaml"
assert_eq "$RC" 2 "validate of a missing file: exit status"
assert_contains "$ERR" "no-such-file.yaml" "stderr of validate of a missing file"
ok "validate of a missing file: exit 2 naming the file"

# ---- Phase 1.1 table: valid rows
jgc validate "$JG_SEED/1_1_valid.yaml"
assert_eq "$RC" 0 "validate 1_1_valid.yaml: exit status"
assert_contains "$OUT" "test-group" "validate description"
assert_contains "$OUT" "job-a" "validate description"
assert_contains "$OUT" "job-b" "validate description"
ok "1.1 valid JobGroup: validate exits 0 and describes the group and its jobs"

jgc validate "$JG_SEED/1_1_single_job.yaml"
assert_eq "$RC" 0 "validate 1_1_single_job.yaml: exit status"
assert_contains "$OUT" "job-a" "validate description"
ok "1.1 header + one job is a valid JobGroup"

submit_follow "$JG_SEED/1_1_valid.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of 1_1_valid.yaml exited $RC"
assert_eq "$GNAME" "test-group" "group name in the submit line"
show_json "$GID"
assert_eq "$(sq 'grp.state')" SUCCEEDED "group state"
assert_eq "$(sq '[grp.jobs[].name] | sort | join(",")')" "job-a,job-b" "job names"
ok "1.1 valid JobGroup submits and succeeds"

submit_follow "$JG_SEED/1_1_single_job.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of 1_1_single_job.yaml exited $RC"
show_json "$GID"
assert_eq "$(sq 'grp.jobs | length')" 1 "number of jobs"
assert_eq "$(job_field job-a state)" SUCCEEDED "job-a state"
ok "1.1 single-job JobGroup submits and succeeds"

# A single document is a group of one job.
cat >"$JG_WORK/one_doc.yaml" <<'EOF'
name: lonely
run: echo "alone"
EOF
jgc validate "$JG_WORK/one_doc.yaml"
assert_eq "$RC" 0 "validate of a one-document YAML: exit status"
assert_contains "$OUT" "lonely" "validate description"
ok "a one-document YAML is a group of one job"

# ---- every seed YAML (except the deliberately invalid ones) and every example validates
invalid_seeds=" 1_1_missing_name.yaml 1_1_duplicate_names.yaml 1_1_invalid_placement.yaml 1_1_empty_group.yaml 1_1_chain.yaml 5_5_duplicate_names.yaml "
n=0
for f in "$JG_SEED"/*.yaml; do
    case "$invalid_seeds" in *" $(basename "$f") "*) continue ;; esac
    jgc validate "$f"
    [ "$RC" -eq 0 ] || fail "seed $(basename "$f") does not validate (exit $RC)"
    n=$((n + 1))
done
[ "$n" -ge 15 ] || fail "only $n seed YAMLs found under $JG_SEED"
ok "all $n valid seed YAMLs validate"

n=0
for f in "$JG_EXAMPLES"/*.yaml; do
    [ -e "$f" ] || continue
    jgc validate "$f"
    [ "$RC" -eq 0 ] || fail "example $(basename "$f") does not validate (exit $RC)"
    n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n examples found under $JG_EXAMPLES"
ok "all $n examples validate"

jg_done
