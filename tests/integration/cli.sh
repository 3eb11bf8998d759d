#!/usr/bin/env bash
# cli.sh - the command line itself (DESIGN section 8): help and version, usage
# errors exit 2, the queue table, errors for unknown ids and ended groups,
# `daemon status`/`daemon stop`, exit 3 without a daemon, and that every JSON
# output is valid JSON.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
jg_setup

VERSION=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$JG_SOURCE_ROOT/meson.build" | head -n 1)

# ---- help and version
jgc --help
assert_eq "$RC" 0 "exit status of --help"
for c in submit queue show logs cancel validate daemon; do
    assert_contains "$OUT" "$c" "--help output"
done
ok "--help exits 0 and lists the commands"

jgc --version
assert_eq "$RC" 0 "exit status of --version"
[ -n "$VERSION" ] || fail "cannot read the version from meson.build"
assert_contains "$OUT" "$VERSION" "--version output"
ok "--version prints $VERSION"

# ---- usage errors: exit 2 with a message on stderr
jgc frobnicate
assert_eq "$RC" 2 "exit status of an unknown command"
assert_contains "$ERR" "frobnicate" "stderr of an unknown command"
ok "an unknown command exits 2 naming it"

jgc queue --bogus-option
assert_eq "$RC" 2 "exit status of an unknown option"
assert_contains "$ERR" "bogus-option" "stderr of an unknown option"
ok "an unknown option exits 2 naming it"

jgc submit
assert_eq "$RC" 2 "exit status of submit without a file"
[ -n "$ERR" ] || fail "submit without a file printed nothing on stderr"
ok "submit without a file exits 2 with a message"

jgc show
assert_eq "$RC" 2 "exit status of show without an id"
jgc show not-a-number
assert_eq "$RC" 2 "exit status of show with a malformed id"
ok "show without an id or with a malformed id exits 2"

# ---- queue: empty, then with a group
jgc_ok queue
header=$(printf '%s\n' "$OUT" | head -n 1)
for col in ID NAME USER STATE; do
    assert_contains "$header" "$col" "queue table header"
done
ok "queue prints a table whose header has ID NAME USER STATE"

jgc_ok queue --json
printf '%s' "$OUT" | jq -e 'type == "array" and length == 0' >/dev/null ||
    fail "queue --json of an empty instance is not an empty JSON array"
ok "queue --json of an empty instance is []"

cat >"$JG_WORK/cli.yaml" <<'EOF'
---
name: cli-test
placement: SAME_INFRA
execution: parallel
---
name: worker
num_nodes: 2
run: echo "worker $SKYPILOT_NODE_RANK"
---
name: helper
run: echo "helper"
EOF
submit_follow "$JG_WORK/cli.yaml"
[ "$RC" -eq 0 ] || fail_group "$GID" "submit of cli.yaml exited $RC"
G=$GID
me=$(id -un)

jgc_ok queue
row=$(printf '%s\n' "$OUT" | grep -E "^[[:space:]]*${G}[[:space:]]" | head -n 1)
[ -n "$row" ] || fail "no queue row starts with id $G"
for f in cli-test "$me" SUCCEEDED; do
    assert_contains "$row" "$f" "queue row of group $G"
done
ok "queue shows the group's id, name, user and state"

jgc_ok queue --json
printf '%s' "$OUT" | jq -e . >/dev/null || fail "queue --json is not valid JSON"
q=$OUT
assert_eq "$(printf '%s' "$q" | jq -r --argjson id "$G" '.[] | select(.id == $id) |
    [.name, .user, .state, (.jobs | length)] | map(tostring) | join(" ")')" "cli-test $me SUCCEEDED 2" "queue --json entry"
assert_eq "$(printf '%s' "$q" | jq -r --argjson id "$G" '.[] | select(.id == $id) |
    .jobs[] | select(.name == "worker") | "\(.num_nodes) \(.state) \(.attempt) \(.exit_code)"')" "2 SUCCEEDED 1 0" \
    "worker job in queue --json"
for k in id name user state reason submitted started ended jobs; do
    printf '%s' "$q" | jq -e --argjson id "$G" --arg k "$k" '.[] | select(.id == $id) | has($k)' >/dev/null ||
        fail "queue --json entry lacks '$k'"
done
ok "queue --json is valid JSON with id, name, user, state, reason, times and jobs"

# ---- show
jgc_ok show "$G"
for f in cli-test worker helper worker-0.cli-test worker-1.cli-test helper-0.cli-test SUCCEEDED; do
    assert_contains "$OUT" "$f" "show output"
done
ok "show prints the group's jobs, nodes with hostnames and states"

show_json "$G"
assert_eq "$(sq 'grp.id')" "$G" "id in show --json"
assert_eq "$(sq 'grp.nodes | length')" 3 "number of nodes in show --json"
sq 'grp.events | length > 0' | grep -qx true || fail "show --json has no events"
sq 'grp.events | all(has("ts") and has("subject") and has("what") and has("reason"))' | grep -qx true ||
    fail "show --json events lack ts/subject/what/reason"
sq 'grp.nodes | all(has("job") and has("rank") and has("state") and has("hostname") and has("address") and has("exit_code"))' |
    grep -qx true || fail "show --json nodes lack job/rank/state/hostname/address/exit_code"
ok "show --json is valid JSON with jobs, nodes and events"

jgc show 999999
[ "$RC" -ne 0 ] || fail "show of an unknown id exited 0"
assert_contains "$ERR" "999999" "stderr of show of an unknown id"
ok "show of an unknown id fails naming it"

jgc show 999999 --json
[ "$RC" -ne 0 ] || fail "show --json of an unknown id exited 0"
ok "show --json of an unknown id fails"

# ---- logs
jgc_ok logs "$G"
assert_contains "$OUT" "(worker-0) worker 0" "logs"
assert_contains "$OUT" "(worker-1) worker 1" "logs"
assert_contains "$OUT" "(helper-0) helper" "logs"
jgc_ok logs "$G" worker --rank 1
assert_contains "$OUT" "(worker-1) worker 1" "logs of worker rank 1"
assert_not_contains "$OUT" "(worker-0)" "logs of worker rank 1"
assert_not_contains "$OUT" "(helper-0)" "logs of worker rank 1"
ok "logs prefixes each line with (job-rank); JOB and --rank select nodes"

jgc logs 999999
[ "$RC" -ne 0 ] || fail "logs of an unknown id exited 0"
jgc logs "$G" no-such-job
[ "$RC" -ne 0 ] || fail "logs of an unknown job exited 0"
assert_contains "$ERR" "no-such-job" "stderr of logs of an unknown job"
ok "logs of an unknown group or job fails"

# ---- cancel errors
jgc cancel "$G"
[ "$RC" -ne 0 ] || fail "cancel of an ended group exited 0"
assert_contains "$OUT$ERR" "$G" "output of cancel of an ended group"
assert_eq "$(group_state "$G")" SUCCEEDED "state after a refused cancel"
ok "cancel of an ended group fails and changes nothing"

jgc cancel 999999
[ "$RC" -ne 0 ] || fail "cancel of an unknown id exited 0"
ok "cancel of an unknown id fails"

jgc cancel
assert_eq "$RC" 2 "exit status of cancel without ids"
ok "cancel without an id or -a exits 2"

# ---- validate output
jgc_ok validate "$JG_WORK/cli.yaml"
assert_contains "$OUT" "cli-test" "validate output"
ok "validate prints a description and exits 0"

# ---- no daemon: exit 3 (the socket path cannot exist: its parent is a file)
touch "$JG_WORK/not-a-dir"
LAST_CMD="jgsched submit cli.yaml -d (JGSCHED_SOCKET=$JG_WORK/not-a-dir/sock)"
OUT=$(JGSCHED_HOME=$JG_WORK/nohome JGSCHED_SOCKET=$JG_WORK/not-a-dir/sock \
    timeout -k 5 30 "$JGSCHED" submit "$JG_WORK/cli.yaml" --infra local -d 2>"$JG_WORK/nodaemon.err" </dev/null)
RC=$?
ERR=$(cat "$JG_WORK/nodaemon.err")
assert_eq "$RC" 3 "exit status of submit without a daemon"
[ -n "$ERR" ] || fail "submit without a daemon printed nothing on stderr"
ok "submit without a reachable daemon exits 3 with a message"

# ---- daemon status and stop
jgc_ok daemon status
contains_ci "$OUT" "$JG_DAEMON_PID" || contains_ci "$OUT" running ||
    fail "daemon status mentions neither the pid $JG_DAEMON_PID nor 'running'"
ok "daemon status reports the running daemon"

jgc_ok daemon stop
for ((i = 0; i < 50; i++)); do
    kill -0 "$JG_DAEMON_PID" 2>/dev/null || break
    sleep 0.2
done
kill -0 "$JG_DAEMON_PID" 2>/dev/null && fail "daemon $JG_DAEMON_PID still alive 10 s after 'daemon stop'"
ok "daemon stop stops the daemon"

jg_done
