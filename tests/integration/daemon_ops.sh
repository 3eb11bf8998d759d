#!/usr/bin/env bash
# daemon_ops.sh - the daemon's table of request ops and its watches, over the
# raw socket protocol (tools/jgproto.py), on a --system daemon.
#
#   - an unknown op gets `unknown op "NAME"`, a request without a string op
#     `a request needs a string field "op"`; every op the protocol names
#     (docs/protocol.md) is routed to its handler, never answered as unknown;
#   - shutdown and policy_reload are refused to a throwaway unprivileged user,
#     each with its own message, and the daemon (same pid) keeps serving;
#   - two clients watch one running group: one leaves after its second
#     snapshot, the other gets every snapshot until the group ends, each with
#     the group's spec and its nodes' job names (pushes use the spec kept
#     from the watch's first reply); then a second group is watched to its
#     end the same way (what was kept for the first is gone with it).
# The user and the instance are removed on any exit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools python3

U=jgops_u_$$
jg_throwaway_user "$U"

JG_CONFIG='backends:
  local:
    capacity: {cpus: 4, memory: 8GB}
    nat: false
stop_grace: 1s'
JG_DAEMON_ARGS=--system
jg_setup
SOCK=$JGSCHED_HOME/jgsched.sock
W=$JG_WORK
TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
# The user runs the tool from a directory it can read.
PROTO=$W/jgproto.py
cp "$(dirname "$0")/tools/jgproto.py" "$PROTO"
chmod 644 "$PROTO"

# proto [USER] SCENARIO ARGS...: a jgproto.py scenario (as USER when given
# with -u USER); sets OUT and RC.
proto() {
    local as=()
    if [ "$1" = -u ]; then
        as=(runuser -u "$2" --)
        shift 2
    fi
    LAST_CMD="jgproto.py $*"
    OUT=$(timeout -k 5 90 "${as[@]}" python3 "$PROTO" "$SOCK" "$@" 2>&1 </dev/null)
    RC=$?
    ERR=""
}

# request [-u USER] JSON: one raw request; its reply line in OUT.
request() {
    proto "$@"
    [ "$RC" -eq 0 ] || fail "request $*: $OUT"
}

# ------------------------------------------------------------- the op table

request request '{"op":"frobnicate"}'
assert_eq "$OUT" '{"ok":false,"error":"unknown op \"frobnicate\""}' "reply to an unknown op"
request request '{"id":1}'
assert_eq "$OUT" '{"ok":false,"error":"a request needs a string field \"op\""}' \
    "reply to a request without op"
request request '{"op":7}'
assert_eq "$OUT" '{"ok":false,"error":"a request needs a string field \"op\""}' \
    "reply to a request whose op is not a string"
ok "unknown and missing ops are answered as before"

# Every op but shutdown, with a key no op takes: each handler answers itself
# (usually "malformed <op> request"), none is unknown.
for op in ping submit queue show watch logs cancel policy_reload infra volume_create \
    volume_ls volume_rm; do
    request request "{\"op\":\"$op\",\"no_such_key_$TAG\":1}"
    assert_not_contains "$OUT" "unknown op" "reply to op $op"
    assert_match "$OUT" '^\{"ok":' "reply to op $op"
done
request request '{"op":"ping","x":1}'
assert_eq "$OUT" '{"ok":false,"error":"ping takes no arguments"}' "ping with an argument"
ok "every op of the protocol reaches its handler"

# ------------------------------------------------------------- owner-only ops

request -u "$U" request '{"op":"shutdown"}'
assert_eq "$OUT" \
    '{"ok":false,"error":"permission denied: only root or the daemon'"'"'s owner may stop it"}' \
    "shutdown by an unprivileged user"
request -u "$U" request '{"op":"policy_reload"}'
assert_eq "$OUT" \
    '{"ok":false,"error":"permission denied: only root or the daemon'"'"'s owner may reload policies"}' \
    "policy_reload by an unprivileged user"
kill -0 "$JG_DAEMON_PID" 2>/dev/null || fail "the daemon is gone after a refused shutdown"
request request '{"op":"policy_reload"}'
assert_match "$OUT" '^\{"ok":true,"policies":' "policy_reload by the daemon's owner"
ok "shutdown and policy_reload are refused to others, the owner may reload"

# ---------------------------------------------------------------- watches

# group_yaml NAME GATE: a group of one job "work-NAME" on two nodes that ends
# once the file GATE exists.
group_yaml() {
    cat <<YAML
---
name: $1
placement: SAME_INFRA
execution: parallel
---
name: work-$1
num_nodes: 2
resources:
  cpus: 1
run: |
  while [ ! -e $2 ]; do sleep 0.1; done
  echo done
YAML
}

# watch_group NAME: submits group NAME, has one client watch it to its end
# and another leave after two snapshots, lets it end; checks both.
watch_group() {
    local name=$1 gate=$W/gate-$1 full=$W/watch-full-$1 part=$W/watch-part-$1
    group_yaml "$name" "$gate" >"$W/$name.yaml"
    submit_detached "$W/$name.yaml"
    wait_state "$GID" RUNNING 60
    timeout -k 5 90 python3 "$PROTO" "$SOCK" watch "$GID" >"$full" 2>&1 </dev/null &
    local full_pid=$!
    timeout -k 5 90 python3 "$PROTO" "$SOCK" watch "$GID" 2 >"$part" 2>&1 </dev/null &
    local part_pid=$!
    local i
    for ((i = 0; i < 300; i++)); do
        [ -s "$full" ] && [ -s "$part" ] && break
        sleep 0.1
    done
    [ -s "$full" ] && [ -s "$part" ] || fail "the watchers of $name got no first snapshot"
    touch "$gate"
    wait "$full_pid" || fail "the full watcher of $name: $(cat "$full")"
    wait "$part_pid" || fail "the watcher of $name that leaves: $(cat "$part")"
    local expect="$name work-$name,work-$name" n_full n_part
    n_full=$(grep -c '^snapshot: ' "$full")
    n_part=$(grep -c '^snapshot: ' "$part")
    [ "$n_full" -ge 2 ] || fail "the full watcher of $name got $n_full snapshot(s): $(cat "$full")"
    assert_eq "$n_part" 2 "snapshots of the watcher of $name that leaves"
    grep '^snapshot: ' "$full" "$part" | grep -v " $expect\$" &&
        fail "a snapshot of $name lacks its spec or its nodes' job names"
    assert_eq "$(tail -n 1 "$full")" "snapshot: SUCCEEDED $expect" "last snapshot of $name"
    head -n 1 "$full" | grep -q '^snapshot: RUNNING ' ||
        fail "first snapshot of $name: $(head -n 1 "$full")"
}

watch_group "first-$TAG"
watch_group "second-$TAG"
kill -0 "$JG_DAEMON_PID" 2>/dev/null || fail "the daemon is gone after the watches"
ok "watchers get a snapshot with spec and nodes per change until the group ends"

jg_done
