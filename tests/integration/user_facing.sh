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
N_BIG=10500
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

jg_done
