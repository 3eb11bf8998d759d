#!/usr/bin/env bash
# queue_scale.sh - `queue`, `show` and `--json` with 100,000 groups stored, and
# many groups submitted in one call (docs/protocol.md: queue, submit).
#
# The store is filled while the daemon is stopped, through the store API
# (tests/store_fill.c: 100,000 ended groups, the last 50 of them ended a
# minute ago), then the daemon is started on it again.  Functional checks
# only, never timings (bench/bench_queue.sh measures those):
#   - the default view lists the active and recently ended groups and counts
#     the rest; --json stays one array;
#   - the full listing (-a, table and --json) pages through every group once,
#     in id order;
#   - -u, -n (exact and prefix) and -s filter, alone and together;
#   - `submit FILE...` and `submit --count N` are atomic per group: a file
#     that does not validate stops the call with nothing submitted; a group the
#     daemon refuses is refused alone, the others are kept.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/tools/daemon.sh
. "$(dirname "$0")/tools/daemon.sh"

: "${JG_STORE_FILL:?JG_STORE_FILL must name the store_fill test helper}"
FILL=100000
RECENT=50

# 4 cpus: two 1-cpu sleepers run, a 4-cpu group can never start beside them.
# spec_limits below the CLI's defaults: a file the CLI accepts, the daemon refuses.
JG_CONFIG='backends:
  local:
    capacity: {cpus: 4, memory: 16GB}
    nat: false
spec_limits:
  max_nodes_per_job: 2'
jg_setup

# ---- fill the store while the daemon is stopped, then start it on it
jgc_ok daemon stop
wait_pid_gone "$JG_DAEMON_PID" 10 || fail "jgschedd $JG_DAEMON_PID did not stop"
"$JG_STORE_FILL" "$JGSCHED_HOME/jgsched.db" "$FILL" "$RECENT" ||
    fail "store_fill could not fill $JGSCHED_HOME/jgsched.db"
rm -f "$JGSCHED_HOME/jgschedd.pid"
timeout -k 5 60 "$JGSCHEDD" >"$JG_WORK/jgschedd.restart" 2>&1 ||
    { cat "$JG_WORK/jgschedd.restart" >&2; fail "jgschedd did not start on the filled store"; }
for ((i = 0; i < 50; i++)); do
    [ -s "$JGSCHED_HOME/jgschedd.pid" ] && break
    sleep 0.2
done
JG_DAEMON_PID=$(tr -dc '0-9' <"$JGSCHED_HOME/jgschedd.pid")
kill -0 "$JG_DAEMON_PID" 2>/dev/null || fail "the restarted jgschedd is not alive"
ok "jgschedd starts on a store of $FILL groups"

cat >"$JG_WORK/sleeper.yaml" <<'EOF'
---
name: sleeper
execution: parallel
---
name: nap
resources:
  cpus: 1
run: sleep 300
EOF
jgc submit --count 2 "$JG_WORK/sleeper.yaml" --infra local
[ "$RC" -eq 0 ] || fail "submit --count 2 exited $RC"
mapfile -t SLEEPERS <<<"$OUT"
[ "${#SLEEPERS[@]}" -eq 2 ] || fail "submit --count 2 printed ${#SLEEPERS[@]} ids, expected 2"
for id in "${SLEEPERS[@]}"; do
    [[ $id =~ ^[0-9]+$ ]] && [ "$id" -gt "$FILL" ] || fail "submit printed '$id', expected a new id"
    wait_state "$id" RUNNING 60
done
ok "two groups run beside the stored ones"

# ---- the default view: active and recently ended groups, and a count of the rest
HIDDEN=$((FILL - RECENT))
jgc_ok queue
rows=$(printf '%s\n' "$OUT" | grep -cE '^ *[0-9]+  ')
assert_eq "$rows" $((RECENT + 2)) "rows of the default view"
assert_eq "$(printf '%s\n' "$OUT" | tail -n 1)" \
    "... and $HIDDEN ended groups (ended over an hour ago; queue -a lists them)" "its last line"
for id in "${SLEEPERS[@]}" $((FILL - RECENT + 1)) "$FILL"; do
    printf '%s\n' "$OUT" | grep -qE "^ *$id  " || fail "group $id is not in the default view"
done
printf '%s\n' "$OUT" | grep -qE "^ *$((FILL - RECENT))  " &&
    fail "group $((FILL - RECENT)), ended two days ago, is in the default view"
ok "the default view lists the $((RECENT + 2)) active and recent groups and counts $HIDDEN more"

jgc_ok queue --json
assert_eq "$(printf '%s' "$OUT" | jq 'length')" $((RECENT + 2)) "groups of the default --json"
ok "the default --json is one array of the same groups, without the count"

# ---- the full listing: every group once, in id order
"$JGSCHED" queue -a --json >"$JG_WORK/all.json" 2>"$JG_WORK/all.err" ||
    fail "queue -a --json exited $?: $(cat "$JG_WORK/all.err")"
summary=$(jq -c '[length, (map(.id) | . == (sort | unique)), .[0].id, .[-1].id,
                  ([.[] | select(.id == 4242)][0] | .name, .jobs[0].name, .jobs[0].state)]' \
    "$JG_WORK/all.json") || fail "queue -a --json is not valid JSON"
assert_eq "$summary" "[$((FILL + 2)),true,1,${SLEEPERS[1]},\"fill-4242\",\"work\",\"SUCCEEDED\"]" \
    "count, order, ends and one group of queue -a --json"
ok "queue -a --json is one valid array of all $((FILL + 2)) groups, each once, in id order"

"$JGSCHED" queue -a >"$JG_WORK/all.txt" 2>"$JG_WORK/all.err" ||
    fail "queue -a exited $?: $(cat "$JG_WORK/all.err")"
assert_eq "$(wc -l <"$JG_WORK/all.txt")" $((FILL + 3)) "lines of queue -a (header + groups)"
assert_match "$(head -n 1 "$JG_WORK/all.txt")" '^ +ID  NAME +USER +STATE +JOBS +SUBMITTED +DURATION +RESTARTS +REASON$' \
    "the header of queue -a"
assert_match "$(grep -E '^ *77777  ' "$JG_WORK/all.txt")" '^ +77777  fill-77777 +alice +SUCCEEDED +work:SUCCEEDED ' \
    "a row of queue -a"
assert_eq "$(awk 'NR > 1 { print $1 }' "$JG_WORK/all.txt" | sort -n | uniq | wc -l)" $((FILL + 2)) \
    "distinct ids of queue -a"
ok "queue -a prints a table of every group"

# ---- --json prints what the daemon sent: the same groups, fields and values
# (the CLI reads pages without decoding them into JSON values; compared
# here, canonicalized, with a page fetched over the raw protocol)
PROTO="$(dirname "$0")/tools/jgproto.py"
page=$(timeout -k 5 60 python3 "$PROTO" "$JGSCHED_HOME/jgsched.sock" request \
    '{"op":"queue","all":true,"after_id":4199,"limit":3}') || fail "a raw queue page: $page"
assert_eq "$(jq -S -c '.groups' <<<"$page")" \
    "$(jq -S -c '[.[] | select(.id >= 4200 and .id <= 4202)]' "$JG_WORK/all.json")" \
    "groups 4200-4202 of queue -a --json and of a raw page"
ok "queue -a --json holds the daemon's groups field for field"

# ---- a full listing shares the daemon: between its pages other clients are
# served (each page is one request, one turn of the loop).  Listings run in a
# loop until told to stop; while one is under way, status answers quickly.
STOP_LISTING="$JG_WORK/stop-listing"
(
    n=0
    while [ ! -e "$STOP_LISTING" ]; do
        "$JGSCHED" queue -a --json >"$JG_WORK/listing.json" 2>&1 || exit 1
        n=$((n + 1))
        echo "$n" >"$JG_WORK/listings.done"
    done
) &
LISTER=$!
for ((i = 0; i < 300; i++)); do
    [ -s "$JG_WORK/listing.json" ] && break
    kill -0 "$LISTER" 2>/dev/null || fail "the listing loop ended early"
    sleep 0.1
done
[ -s "$JG_WORK/listing.json" ] || { touch "$STOP_LISTING"; fail "no listing started"; }
worst=0
for ((i = 0; i < 3; i++)); do
    t0=$(date +%s.%N)
    jgc daemon status
    took=$(fsub "$(date +%s.%N)" "$t0")
    [ "$RC" -eq 0 ] || { touch "$STOP_LISTING"; fail "daemon status exited $RC during a listing"; }
    fle "$took" "$worst" || worst=$took
done
kill -0 "$LISTER" 2>/dev/null || fail "the listing loop ended while status was measured"
touch "$STOP_LISTING"
wait "$LISTER" || fail "a queue -a --json of the listing loop failed: $(tail -n 3 "$JG_WORK/listing.json")"
fle "$worst" 3 || fail "daemon status took ${worst}s while queue -a --json listed $((FILL + 2)) groups (limit 3 s)"
ok "while queue -a --json lists every group, daemon status answers (slowest ${worst}s)"

# ---- filters
jgc_ok queue -a -u bob --json
assert_eq "$(printf '%s' "$OUT" | jq -c '[length, all(.user == "bob")]')" "[$((FILL / 10)),true]" "queue -a -u bob"
jgc_ok queue -u bob
assert_eq "$(printf '%s\n' "$OUT" | grep -cE '^ *[0-9]+  ')" $((RECENT / 10)) "rows of queue -u bob"
assert_eq "$(printf '%s\n' "$OUT" | tail -n 1)" \
    "... and $((HIDDEN / 10)) ended groups (ended over an hour ago; queue -a lists them)" \
    "the count of queue -u bob"
ok "-u lists one user's groups and counts only theirs"

jgc_ok queue -a -n rare --json
assert_eq "$(printf '%s' "$OUT" | jq -c '[length, all(.name == "rare")]')" "[$((FILL / 1000)),true]" "queue -a -n rare"
jgc_ok queue -n rare
assert_eq "$(printf '%s\n' "$OUT" | grep -cE '^ *[0-9]+  ')" 1 "rows of queue -n rare"
assert_eq "$(printf '%s\n' "$OUT" | tail -n 1)" \
    "... and $((FILL / 1000 - 1)) ended groups (ended over an hour ago; queue -a lists them)" \
    "the count of queue -n rare"
jgc_ok queue -a -n 'fill-9999*' --json
assert_eq "$(printf '%s' "$OUT" | jq -c 'map(.name)')" \
    '["fill-9999","fill-99990","fill-99991","fill-99992","fill-99993","fill-99994","fill-99995","fill-99996","fill-99997","fill-99998","fill-99999"]' \
    "queue -a -n 'fill-9999*'"
ok "-n lists a name, or with a trailing * the names that start with it"

jgc_ok queue -s failed --json
assert_eq "$(printf '%s' "$OUT" | jq -c '[length, all(.state == "FAILED")]')" "[$((FILL / 100)),true]" "queue -s failed"
jgc_ok queue -s RUNNING,failed -u bob --json
assert_eq "$(printf '%s' "$OUT" | jq -c 'length')" 0 "queue -s running,failed -u bob"
jgc_ok queue -s running,Failed --json
assert_eq "$(printf '%s' "$OUT" | jq -c '[length, (map(.state) | unique)]')" \
    "[$((FILL / 100 + 2)),[\"FAILED\",\"RUNNING\"]]" "queue -s running,failed"
jgc_ok queue -s succeeded -n 'fill-1*' -u alice --json
assert_eq "$(printf '%s' "$OUT" | jq -c '[length, all(.state == "SUCCEEDED" and .user == "alice" and (.name | startswith("fill-1")))]')" \
    "[9888,true]" "queue -s succeeded -n 'fill-1*' -u alice"
jgc queue -s bogus
assert_eq "$RC" 2 "exit status of queue -s bogus"
assert_contains "$ERR" "'BOGUS' is not a state" "the message of queue -s bogus"
ok "-s lists the groups in the states named, whenever they ended, with -u and -n too"

# ---- show among 100,000
show_json 4242
assert_eq "$(sq '[grp.name, grp.state, grp.jobs[0].name, (grp.events | length > 0)] | tostring')" \
    '["fill-4242","SUCCEEDED","work",true]' "show of a stored group"
jgc_ok show 99901
assert_contains "$OUT" "fill-99901" "show 99901"
ok "show answers for any of the stored groups"

# ---- many groups in one call
# group_file NAME JOB_LINES: $JG_WORK/NAME.yaml, a group NAME of one job
# "work" (JOB_LINES before its run: line 6 on).
group_file() {
    printf -- '---\nname: %s\nexecution: parallel\n---\nname: work\n%s\nrun: "true"\n' \
        "$1" "$2" >"$JG_WORK/$1.yaml"
}
group_file big4 $'resources:\n  cpus: 4'
group_file bad 'num_nodes: lots'
group_file wide 'num_nodes: 3'
group_file other $'resources:\n  cpus: 4'
jgc submit "$JG_WORK/big4.yaml" "$JG_WORK/bad.yaml" --infra local
assert_eq "$RC" 2 "exit status of a call with a file that does not validate"
assert_contains "$ERR" "$JG_WORK/bad.yaml:6:12: num_nodes" "the error names file:line:col"
assert_contains "$ERR" "nothing was submitted" "the error says nothing was submitted"
assert_eq "$OUT" "" "ids printed by the refused call"
jgc_ok queue -a -n 'big4*' --json
assert_eq "$(printf '%s' "$OUT" | jq length)" 0 "groups of the refused call"
ok "a file that does not validate stops the call: nothing of it, nor of the others, is stored"

jgc submit --count 150 "$JG_WORK/big4.yaml" --infra local
[ "$RC" -eq 0 ] || fail "submit --count 150 exited $RC"
printed=$(printf '%s\n' "$OUT" | grep -E '^[0-9]+$' | tr '\n' ' ')
assert_eq "$(printf '%s\n' "$OUT" | grep -cE '^[0-9]+$')" 150 "ids printed by submit --count 150"
jgc_ok queue -a -n 'big4-*' --json
assert_eq "$(printf '%s' "$OUT" | jq -c '[length, all(.state == "PENDING"), (map(.name) == [range(150) | "big4-\(.)"])]')" \
    "[150,true,true]" "the groups of submit --count 150"
assert_eq "$(printf '%s' "$OUT" | jq -r 'map(.id | tostring) | join(" ")') " "$printed" \
    "the ids printed are the groups stored"
jgc submit --count 1 "$JG_WORK/big4.yaml" --infra local -n solo
[ "$RC" -eq 0 ] || fail "submit --count 1 -n solo exited $RC"
assert_match "$OUT" '^[0-9]+$' "submit --count 1 -n solo"
jgc_ok show "$OUT" --json
assert_eq "$(printf '%s' "$OUT" | jq -r '(.group // .).name')" solo-0 "the name of submit --count 1 -n solo"
ok "submit --count N stores N groups NAME-0 .. NAME-(N-1), over several requests"

jgc submit "$JG_WORK/big4.yaml" "$JG_WORK/wide.yaml" "$JG_WORK/other.yaml" --infra local
assert_eq "$RC" 1 "exit status when the daemon refuses one group of three"
assert_eq "$(printf '%s\n' "$OUT" | grep -cE '^[0-9]+$')" 2 "ids printed"
assert_contains "$ERR" "$JG_WORK/wide.yaml:6:12: num_nodes: 3 nodes, over the limit of 2" \
    "the daemon's error names file:line:col"
jgc_ok queue -a -n wide --json
assert_eq "$(printf '%s' "$OUT" | jq length)" 0 "groups named wide"
jgc_ok queue -a -n other --json
assert_eq "$(printf '%s' "$OUT" | jq -c 'map(.state)')" '["PENDING"]' "groups named other"
ok "a group the daemon refuses is refused alone: nothing of it is stored, the others are"

long=$(printf 'n%.0s' {1..60})
jgc submit --count 150 -n "$long" "$JG_WORK/big4.yaml" --infra local
assert_eq "$RC" 2 "exit status of --count with names too long"
assert_contains "$ERR" "--count 150 would name a group $long-149, which is not a DNS label" \
    "the message of --count with names too long"
jgc_ok queue -a -n "$long*" --json
assert_eq "$(printf '%s' "$OUT" | jq length)" 0 "groups of the refused --count"
jgc submit --count 2 --wait "$JG_WORK/big4.yaml"
assert_eq "$RC" 2 "exit status of --count with --wait"
ok "--count whose names cannot all be valid stores none; --wait follows one group only"

# ---- the daemon checks for itself what the CLI checks first
raw() { timeout -k 5 60 python3 "$PROTO" "$JGSCHED_HOME/jgsched.sock" request "$1" 2>&1; }
yaml_json=$(jq -Rs . <"$JG_WORK/big4.yaml")
reply=$(raw "{\"op\":\"submit\",\"file\":\"$JG_WORK/big4.yaml\",\"yaml\":$yaml_json,\"count\":101}")
assert_contains "$reply" "count is an integer from 1 to 100" "a submit of 101 copies"
reply=$(raw "{\"op\":\"submit\",\"file\":\"$JG_WORK/big4.yaml\",\"yaml\":$yaml_json,\"count\":20,\"first_index\":90,\"name\":\"$long\"}")
assert_eq "$(printf '%s' "$reply" | jq -c '[.ok, .groups]')" '[false,[]]' "a raw submit whose last name is too long"
assert_contains "$reply" "$long-109" "the refusal names the last name"
reply=$(raw "{\"op\":\"submit\",\"file\":\"$JG_WORK/big4.yaml\",\"yaml\":$yaml_json,\"count\":3,\"first_index\":7,\"name\":\"raw\"}")
assert_eq "$(printf '%s' "$reply" | jq -c '[.ok, (.groups | map(.name)), (.groups | map(.state) | unique)]')" \
    '[true,["raw-7","raw-8","raw-9"],["PENDING"]]' "a raw submit of 3 copies from index 7"
reply=$(raw '{"op":"queue","states":["BOGUS"]}')
assert_contains "$reply" "'BOGUS' is not a state" "a queue request with an unknown state"
reply=$(raw "{\"op\":\"queue\",\"name\":\"$(printf 'x%.0s' {1..300})\"}")
assert_contains "$reply" "at most 256 bytes" "a queue request with a 300-byte name"
ok "the daemon bounds count, checks every name before storing any, and checks queue filters"

jg_done
