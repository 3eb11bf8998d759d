#!/usr/bin/env bash
# daemon_robustness.sh - jgschedd under concurrent load and misbehaving clients.
#
# 8 CLIs submitting 100 trivial groups each at the same time: exactly 800
# groups stored, unique ids, every id printed by a submit is in the queue, and
# no "database is locked" anywhere.  Then, through tools/jgproto.py: a line of
# garbage, a request cut off by a close, a line over 1 MiB (error reply, then
# close), a client that connects and says nothing (others are answered within
# 2 s meanwhile), a client killed in the middle of a request, and a client that
# watches a group and pipelines requests without ever reading (others are
# still answered within 2 s).  After each: the same daemon (same pid) answers
# `jgsched daemon status` and accepts a new submit.
#
# The submitted groups never run: capacity is one cpu, held by a blocker group,
# so they wait PENDING behind it (no backfill) and the test measures the
# daemon's socket and store, not 800 node launches.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

command -v python3 >/dev/null || { echo "not ok - python3 is needed" >&2; exit 1; }
PROTO=$(cd "$(dirname "$0")" && pwd)/tools/jgproto.py

JG_CONFIG='backends:
  local:
    capacity: {cpus: 1, memory: 16GB}
    nat: false
stop_grace: 1s'
jg_setup
SOCK=$JGSCHED_HOME/jgsched.sock
W=$JG_WORK
TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)

# proto SCENARIO ARGS...: runs a jgproto.py scenario; sets OUT and RC.
proto() {
    LAST_CMD="jgproto.py $*"
    OUT=$(timeout -k 5 60 python3 "$PROTO" "$SOCK" "$@" 2>&1 </dev/null)
    RC=$?
    ERR=""
}

# still_serving WHAT: the daemon that was started (same pid) answers status
# and accepts a submit.
still_serving() {
    jgc daemon status
    [ "$RC" -eq 0 ] || fail "after $1: 'jgsched daemon status' exited $RC"
    assert_contains "$OUT" "pid:     $JG_DAEMON_PID" "daemon status after $1 (the same daemon)"
    jgc submit "$W/tiny.yaml" --infra local -n "after-$TAG" -d
    [ "$RC" -eq 0 ] || fail "after $1: a submit exited $RC"
    [[ $OUT =~ ^[0-9]+$ ]] || fail "after $1: submit -d printed '$OUT'"
    N_AFTER=$((N_AFTER + 1))
}

# ping_within LIMIT_S WHAT: a raw ping is answered within LIMIT_S seconds.
ping_within() {
    proto ping
    [ "$RC" -eq 0 ] || fail "ping while $2: $OUT"
    fle "$OUT" "$1" || fail "ping while $2 took ${OUT}s, more than ${1}s"
}

N_AFTER=0
cat >"$W/blocker.yaml" <<EOF
---
name: blocker-$TAG
placement: SAME_INFRA
execution: parallel
---
name: hold
resources:
  cpus: 1
run: |
  echo holding
  while [ ! -e $W/stop-blocker ]; do sleep 0.2; done
EOF
cat >"$W/tiny.yaml" <<EOF
---
name: tiny-$TAG
placement: SAME_INFRA
execution: parallel
---
name: t
resources:
  cpus: 1
run: "true"
EOF
submit_detached "$W/blocker.yaml"
GBLK=$GID
wait_log "$GBLK" holding 20

# ---- 8 concurrent clients x 100 submits
start=$(date +%s.%N)
pids=()
for k in 1 2 3 4 5 6 7 8; do
    (
        for ((i = 0; i < 100; i++)); do
            timeout -k 5 60 "$JGSCHED" submit "$W/tiny.yaml" --infra local -d \
                >>"$W/sub.$k.out" 2>>"$W/sub.$k.err" </dev/null || echo "submit $i exited $?" >>"$W/sub.$k.err"
        done
    ) &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p"
done
took=$(fsub "$(date +%s.%N)" "$start")
LAST_CMD="8 x 100 x jgsched submit tiny.yaml -d"
OUT=$(cat "$W"/sub.*.out)
ERR=$(cat "$W"/sub.*.err)
RC=0
[ -z "$ERR" ] || fail "the concurrent submits wrote to stderr (first lines: $(head -n 5 <<<"$ERR"))"
assert_eq "$(grep -c '^[0-9][0-9]*$' <<<"$OUT")" 800 "number of ids printed by 800 submits"
assert_eq "$(sort -u <<<"$OUT" | wc -l)" 800 "number of distinct ids printed by 800 submits"
if grep -qi "database is locked" "$W"/sub.* "$JGSCHED_HOME/jgschedd.log"; then
    fail "'database is locked' in the submit output or the daemon log"
fi
jgc_ok queue -a --json
Q=$(printf '%s' "$OUT" | jq -c 'if type == "array" then . else (.groups // []) end')
stored=$(jq -r --arg n "tiny-$TAG" '.[] | select(.name == $n) | .id' <<<"$Q" | sort -n)
assert_eq "$(wc -l <<<"$stored")" 800 "groups named tiny-$TAG in queue -a --json"
assert_eq "$(jq '[.[].id] | length == (unique | length)' <<<"$Q")" true "ids in queue -a --json are unique"
assert_eq "$(cat "$W"/sub.*.out | sort -n)" "$stored" "ids printed by the submits vs ids stored"
assert_eq "$(jq -r --arg n "tiny-$TAG" '[.[] | select(.name == $n) | .state] | unique | join(",")' <<<"$Q")" PENDING "states of the 800 groups (waiting behind the blocker)"
ok "8 concurrent clients x 100 submits in ${took}s: 800 groups stored, unique ids, no 'database is locked'"

# ---- a line of garbage: an error reply, and the connection goes on
proto garbage
[ "$RC" -eq 0 ] || fail "garbage line: $OUT"
said=${OUT#ok: }
still_serving "a garbage line"
ok "$said"

# ---- a request cut off by a close
proto truncated
[ "$RC" -eq 0 ] || fail "truncated request: $OUT"
said=${OUT#ok: }
still_serving "a truncated request"
ok "$said"

# ---- a line over 1 MiB: an error reply, then the daemon closes
proto oversize
[ "$RC" -eq 0 ] || fail "oversize message: $OUT"
said=${OUT#ok: }
still_serving "a message over 1 MiB"
ok "$said"

# ---- a client that connects and says nothing
python3 "$PROTO" "$SOCK" idle 30 >"$W/idle.out" 2>&1 </dev/null &
idle_pid=$!
for ((i = 0; i < 50; i++)); do
    grep -q connected "$W/idle.out" 2>/dev/null && break
    sleep 0.1
done
grep -q connected "$W/idle.out" || fail "the idle client did not connect: $(cat "$W/idle.out")"
ping_within 2 "a silent client holds a connection"
t0=$(date +%s.%N)
jgc_ok queue
dt=$(fsub "$(date +%s.%N)" "$t0")
fle "$dt" 2 || fail "'jgsched queue' took ${dt}s while a silent client is connected"
still_serving "a silent client"
kill "$idle_pid" 2>/dev/null
wait "$idle_pid" 2>/dev/null
ok "a client that connects and says nothing does not hold up others (queue in ${dt}s)"

# ---- a client killed in the middle of a request
proto half
[ "$RC" -eq 137 ] || fail "the half-request client was expected to die by SIGKILL (137), exited $RC: $OUT"
still_serving "a client killed mid-request"
ok "a client killed in the middle of a request leaves the daemon serving"

# ---- a client that watches and pipelines requests but never reads
python3 "$PROTO" "$SOCK" flood "$GBLK" 4 >"$W/flood.out" 2>&1 </dev/null &
flood_pid=$!
for ((i = 0; i < 100; i++)); do
    grep -q flooding "$W/flood.out" 2>/dev/null && break
    kill -0 "$flood_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q flooding "$W/flood.out" || fail "the flooding client did not get going: $(cat "$W/flood.out")"
for ((i = 0; i < 3; i++)); do
    ping_within 2 "a client does not read its replies"
    sleep 0.3
done
still_serving "a client that never reads"
wait "$flood_pid"
frc=$?
[ "$frc" -eq 0 ] || fail "the flooding client failed ($frc): $(cat "$W/flood.out")"
still_serving "the non-reading client went away"
ok "a watching client that never reads does not stop the daemon serving others ($(head -n 1 "$W/flood.out"))"

# ---- everything accounted for
jgc_ok queue -a --json
Q=$(printf '%s' "$OUT" | jq -c 'if type == "array" then . else (.groups // []) end')
assert_eq "$(jq --arg n "after-$TAG" '[.[] | select(.name == $n)] | length' <<<"$Q")" "$N_AFTER" "groups submitted after the misbehaving clients"
assert_eq "$(jq 'length' <<<"$Q")" $((1 + 800 + N_AFTER)) "groups in the store"
if grep -qi "database is locked" "$JGSCHED_HOME/jgschedd.log"; then
    fail "'database is locked' in the daemon log"
fi
t0=$(date +%s.%N)
jgc_ok cancel -a
wait_state "$GBLK" CANCELLED 20
for ((i = 0; i < 100; i++)); do
    active=$(queue_json | jq '[.[] | select(.state == "PENDING" or .state == "CANCELLING")] | length')
    [ "$active" = 0 ] && break
    sleep 0.2
done
assert_eq "$active" 0 "groups still pending 20 s after cancel -a"
dt=$(fsub "$(date +%s.%N)" "$t0")
assert_no_leftovers "blocker-$TAG" "$GBLK"
ok "$((1 + 800 + N_AFTER)) groups stored; cancel -a ends them all in ${dt}s, nothing left"

jg_done
