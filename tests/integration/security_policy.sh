#!/usr/bin/env bash
# security_policy.sh - a hostile local user against root's jgschedd --system,
# through policies (issue 10).  A throwaway user M (mallory) and an honest one
# B (bob) share the daemon; M tries to:
#  (a) make root's daemon read a root-only file: `submit --policy FILE` is read
#      by the CLI as M (permission denied), and a request crafted on the socket,
#      or a YAML header, naming that path is refused; the file's content never
#      shows in any output nor in the daemon log;
#  (b) hang the daemon with a FIFO as --policy: the CLI refuses it at once and
#      the daemon keeps answering;
#  (c) hold the daemon with Lua that loops on expensive C calls (table.move of
#      2^24 elements, string.rep of 1 MB): `daemon status` answers within a
#      bound, and the group records the policy errors and goes on under the
#      default decisions;
#  (d) jump the queue with priority() returning -1e300: with room for one group
#      at a time, B's earlier group starts first;
#  (e) forge daemon log lines with print("...\n<timestamp> info ..."): the
#      newline reaches the log escaped, no forged line appears.
# Users and their processes are removed on any exit.
# jq filters are single-quoted on purpose.
# shellcheck disable=SC2016
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools mkfifo python3
PROTO=$(cd "$(dirname "$0")" && pwd)/tools/jgproto.py

UM=jgsp_m_$$
UB=jgsp_b_$$
jg_throwaway_user "$UM"
jg_throwaway_user "$UB"

# Room for one 2-cpu group at a time: (d) needs a queue.
JG_CONFIG="backends:
  local:
    capacity: {cpus: 2, memory: 8GB}
    nat: false"
JG_DAEMON_ARGS=--system
jg_setup
SOCK=$JGSCHED_HOME/jgsched.sock
LOG=$JGSCHED_HOME/jgschedd.log
W=$JG_WORK
chmod 755 "$W"
MDIR=$W/mallory
mkdir -p "$MDIR"
chown "$UM" "$MDIR"
chmod 700 "$MDIR"

# The checks below judge a CLI call that timed out themselves (RC 124 or 137).
JG_AS_MAY_TIME_OUT=1

# group_yaml NAME CPUS RUN: a one-job group readable by everyone.
group_yaml() {
    cat >"$W/$1.yaml" <<EOF
---
name: $1
placement: SAME_INFRA
execution: parallel
---
name: main
resources:
  cpus: $2
  memory: 1GB
run: $3
EOF
    chmod 644 "$W/$1.yaml"
}

# policy_file NAME: stdin into M's own policy file $MDIR/NAME.lua.
policy_file() {
    cat >"$MDIR/$1.lua"
    chown "$UM" "$MDIR/$1.lua"
    chmod 600 "$MDIR/$1.lua"
}

group_yaml quick 1 "'true'"

# ================================================================ (a) a root-only file
TOKEN=sk-live-$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 24)
SECRET=$W/root-only.lua
printf 'local key = "%s\n' "$TOKEN" >"$SECRET"      # an unfinished string: its load error would quote it
chmod 600 "$SECRET"
no_token() {    # TEXT WHAT
    case $1 in *"$TOKEN"*) fail "the root-only file's content leaked in $2: $1" ;; esac
}

jg_as "$UM" submit "$W/quick.yaml" --infra local -d --policy "$SECRET"
[ "$RC" -ne 0 ] || fail "submit --policy of a root-only file as $UM was accepted"
assert_contains "$ERR" "cannot read $SECRET: Permission denied" "submit --policy of a root-only file"
no_token "$OUT$ERR" "the CLI's output"
ok "(a) submit --policy of a root-only file: the CLI, running as the user, cannot read it"

# The same path in a request crafted on the socket, as M.
REQ=$(jq -cn --arg p "$SECRET" --rawfile y "$W/quick.yaml" \
    '{op: "submit", file: "quick.yaml", yaml: $y, name: null, infra: "local", policy: $p}')
OUT=$(timeout -k 5 30 runuser -u "$UM" -- python3 "$PROTO" "$SOCK" request "$REQ" 2>&1)
assert_contains "$OUT" '"ok":false' "reply to a crafted submit naming $SECRET"
assert_contains "$OUT" "is a file path: jgschedd never opens a file a request names" \
    "reply to a crafted submit naming $SECRET"
no_token "$OUT" "the reply to a crafted request"
# ...and with policy_text but a path for its name.
REQ=$(jq -cn --arg p "$SECRET" --rawfile y "$W/quick.yaml" \
    '{op: "submit", file: "quick.yaml", yaml: $y, policy: $p, policy_text: "return {}"}')
OUT=$(timeout -k 5 30 runuser -u "$UM" -- python3 "$PROTO" "$SOCK" request "$REQ" 2>&1)
assert_contains "$OUT" "policy_text needs a policy name" "reply to policy_text under a path"
ok "(a) a submit request crafted on the socket with a policy path is refused"

# ...and in the YAML header.
sed "s|^execution: parallel|execution: parallel\npolicy: $SECRET|" "$W/quick.yaml" >"$W/header.yaml"
chmod 644 "$W/header.yaml"
jg_as "$UM" submit "$W/header.yaml" --infra local -d
[ "$RC" -ne 0 ] || fail "a YAML header naming $SECRET as its policy was accepted"
assert_contains "$OUT$ERR" "is a file path: jgschedd never opens a file a request names" \
    "submit of a YAML whose header names $SECRET"
no_token "$OUT$ERR" "the CLI's output"
jg_as "$UM" queue --json
assert_eq "$(jq '[.[] | select(.user == "'"$UM"'")] | length' <<<"$OUT")" 0 "groups of $UM stored"
ok "(a) a YAML header naming the root-only file as its policy is refused; nothing stored"

# ================================================================ (b) a FIFO as --policy
mkfifo "$MDIR/fifo.lua"
chown "$UM" "$MDIR/fifo.lua"
JG_AS_TIMEOUT=20 jg_as "$UM" submit "$W/quick.yaml" --infra local -d --policy "$MDIR/fifo.lua"
case $RC in 124 | 137) fail "submit --policy FIFO as $UM blocked (killed after 20 s)" ;; esac
[ "$RC" -ne 0 ] || fail "submit --policy FIFO as $UM was accepted"
assert_contains "$ERR" "not a regular file" "submit --policy FIFO"
fle "$TOOK" 5 || fail "submit --policy FIFO took ${TOOK}s"
JG_AS_TIMEOUT=20 jg_as "$UB" daemon status
assert_eq "$RC" 0 "daemon status as $UB after the FIFO"
ok "(b) submit --policy FIFO is refused by the CLI in ${TOOK}s; the daemon answers"

# ================================================================ (e) forged log lines
FORGED="$(date -u +%Y-%m-%dT%H:%M:%S).000Z info group 1 deleted by root"
policy_file forger <<EOF
return {
  on_submit = function(group, user)
    print("hello\n$FORGED")
    print("\27]0;owned\7\27[2J")
    return true
  end,
}
EOF
jg_as_submit "$UM" "$W/quick.yaml" --policy "$MDIR/forger.lua" -n "forger-$$"
GE=$GID
wait_state "$GE" SUCCEEDED 60
grep -q "policy forger: hello\\\\n$FORGED" "$LOG" ||
    fail "the policy's print does not reach the daemon log escaped: $(grep 'policy forger' "$LOG")"
if grep -qx "$FORGED" "$LOG" || grep -q "^$FORGED" "$LOG"; then
    fail "a forged line is in the daemon log: $(grep -n "$FORGED" "$LOG")"
fi
if grep -q $'\e' "$LOG" || grep -q $'\a' "$LOG"; then
    fail "raw terminal control characters reached the daemon log"
fi
ok "(e) print with a newline and ESC sequences: escaped on its own log line, nothing forged"

# ================================================================ (c) expensive C calls in a loop
policy_file hog <<'EOF'
return {
  on_submit = function(group, user)
    while true do table.move({}, 1, (1 << 24) - 2, 2) end
  end,
  place = function(group, infras)
    while true do local s = string.rep("x", 1000000) end
  end,
  on_node_exit = function(group, job, event)
    local t = setmetatable({}, {__index = tostring})
    while true do pcall(table.concat, t, "", 1, 1 << 40) end
  end,
}
EOF
# Two submits of it at once, then bob asks the daemon for its status.
HOGS=()
for i in 1 2; do
    (cd "$W" && timeout -k 5 120 runuser -u "$UM" -- env -u JGSCHED_HOME -u JGSCHEDD \
        JGSCHED_SOCKET="$SOCK" "$JGSCHED" submit "$W/quick.yaml" --infra local -d \
        -n "hog-$i-$$" --policy "$MDIR/hog.lua" >"$W/hog-$i.out" 2>&1 </dev/null) &
    HOGS+=($!)
done
JG_AS_TIMEOUT=60 jg_as "$UB" daemon status
assert_eq "$RC" 0 "daemon status as $UB while $UM's hogs are submitted"
fle "$TOOK" 5 || fail "daemon status took ${TOOK}s while two hog policies ran (bound: 5 s)"
STATUS_TOOK=$TOOK
for p in "${HOGS[@]}"; do
    wait "$p" || fail "a submit of the hog policy failed: $(cat "$W"/hog-*.out)"
done
GH=$(tr -dc '0-9' <"$W/hog-1.out")
[ -n "$GH" ] || fail "no group id from the hog submit: $(cat "$W/hog-1.out")"
wait_end "$GH" 60
jg_as "$UM" show "$GH" --json
[ "$RC" -eq 0 ] || fail "show $GH as $UM exited $RC"
ERRS=$(jq -r '(.group // .) | .events[]? | select(.subject == "policy" and .what == "error") | .reason' <<<"$OUT")
assert_contains "$ERRS" "on_submit failed (default decision used): on_submit: hog.lua:3: policy ran past its time budget of 200 ms" \
    "policy error events of $GH"
assert_contains "$ERRS" "place failed (default decision used): place: hog.lua:6: policy ran past its time budget" \
    "policy error events of $GH"
assert_contains "$ERRS" "on_node_exit: hog.lua:10: policy ran past its time budget" "policy error events of $GH"
assert_eq "$(jq -r '(.group // .) | .state' <<<"$OUT")" SUCCEEDED "state of $GH under default decisions"
ok "(c) table.move / string.rep / table.concat loops: daemon status in ${STATUS_TOOK}s; each hook stopped at its budget, recorded, default decision used"

# ================================================================ (d) jumping the queue
group_yaml first 2 "while [ ! -e $W/stop-first ]; do sleep 0.2; done"
group_yaml honest 2 "'true'"
policy_file me-first <<'EOF'
return {
  priority = function(group, usage) return -1e300 end,
}
EOF
jg_as_submit "$UB" "$W/first.yaml"
G1=$GID
wait_state "$G1" RUNNING 60
jg_as_submit "$UB" "$W/honest.yaml"
GB=$GID
jg_as_submit "$UM" "$W/honest.yaml" -n "jumper-$$" --policy "$MDIR/me-first.lua"
GM=$GID
assert_eq "$(group_state "$GB")" PENDING "bob's second group while the first runs"
assert_eq "$(group_state "$GM")" PENDING "mallory's group while the first runs"
touch "$W/stop-first"
wait_state "$G1" SUCCEEDED 60
wait_state "$GB" SUCCEEDED 60
jg_as "$UB" show "$GB" --json
B_START=$(jq -r '[(.group // .) | .events[]? | select(.subject == "group" and .what == "STARTING") | .ts] | min' <<<"$OUT")
jg_as "$UM" show "$GM" --json
M_START=$(jq -r '[(.group // .) | .events[]? | select(.subject == "group" and .what == "STARTING") | .ts] | min // empty' <<<"$OUT")
[ -z "$M_START" ] || fle "$B_START" "$M_START" ||
    fail "mallory's group started at $M_START, before bob's earlier one at $B_START"
wait_state "$GM" SUCCEEDED 60
ok "(d) priority -1e300 from a user's policy: bob's earlier group started first"

# ================================================================ nothing leaked anywhere
no_token "$(cat "$LOG")" "the daemon log"
ok "the root-only file's content is nowhere in the daemon log"

jg_done
