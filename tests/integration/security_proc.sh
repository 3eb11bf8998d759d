#!/usr/bin/env bash
# security_proc.sh - a hostile user of a jgschedd --system instance against
# the daemon's processes and the files of their own node directories.
#
# The node directory and everything in it belong to the node's user, so
# root must not believe a pid, follow a link, or block on a file found there.
# A throwaway user H (hostile) attacks; V is another throwaway user whose
# process must survive, and the test itself (root) owns the other victims.
#
#  (a) H appends `1 started <pid> <starttime>` lines to the status files of
#      their running nodes, naming a root process and one of V's, then
#      cancels: both victims live on, and the group still cancels with
#      nothing of H's left running.
#  (b) during attempt 1 of a job with max_restarts_on_errors, H swaps the
#      node's tmp/ for a link to a root directory: the restart does not
#      chmod the link's target (its mode stays 0755).
#  (c) H puts a FIFO in place of a running node's output.log: `daemon
#      status` and `queue` still answer at once, `logs` still shows what the
#      node wrote (the daemon reads its own copy, collected through the
#      descriptor it opened before the swap), and the group still cancels
#      cleanly.
#
# Users, their processes and the victims are removed on any exit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools setsid mkfifo

UH=jgth_h_$$
UV=jgth_v_$$
VICTIMS=()
# The victims must not outlive the test, whatever the attack did to them.
jg_final_teardown() {
    local p
    for p in "${VICTIMS[@]}"; do kill -9 "$p" 2>/dev/null; done
}

jg_throwaway_user "$UH"
jg_throwaway_user "$UV"

JG_DAEMON_ARGS=--system
jg_setup
W=$JG_WORK
chmod 755 "$W"

# Every CLI call as a user is bounded tighter than lib.sh's default.
JG_AS_TIMEOUT=20

# hostile CMD: a shell command run as H (bounded).
hostile() {
    timeout -k 5 20 runuser -u "$UH" -- sh -c "$1" </dev/null
}

starttime() {   # PID -> field 22 of /proc/PID/stat
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $20}'
}

alive() {       # PID: running and not a zombie
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $1}')
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# wait_cleaned DIR: waits (bounded) until cleanup removed the node's runtime files.
wait_cleaned() {
    local i
    for ((i = 0; i < 100; i++)); do
        [ ! -e "$1/env" ] && return 0
        sleep 0.2
    done
    fail "cleanup did not remove $1/env within 20 s"
}

# h_left GID NAME: what of H's group still runs (pids, space separated).
h_left() {
    local i left
    for ((i = 0; i < 25; i++)); do
        left=$({
            pgrep -u "$UH"
            pids_with_env "SKYPILOT_JOBGROUP_NAME=$2" "JGSCHED_GROUP_ID=$1"
            pgrep -f -- "--hold $(jg_regex_escape "$JGSCHED_HOME/state/groups/$1")\$"
        } | tr '\n' ' ')
        left=${left% }
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    echo "$left"
}

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)

# ---- (a) forged status lines name a root process and another user's
# Each victim leads a process group of its own, as a shim does.
setsid sleep 600 </dev/null >/dev/null 2>&1 &
ROOT_VICTIM=$!
VICTIMS+=("$ROOT_VICTIM")
runuser -u "$UV" -- setsid sleep 601 </dev/null >/dev/null 2>&1 &
VICTIMS+=("$!")
USER_VICTIM=""
for ((i = 0; i < 50; i++)); do
    USER_VICTIM=$(pgrep -u "$UV" -x sleep | head -n 1)
    [ -n "$USER_VICTIM" ] && alive "$ROOT_VICTIM" && break
    sleep 0.1
done
[ -n "$USER_VICTIM" ] || fail "$UV's victim process did not start"
VICTIMS+=("$USER_VICTIM")
alive "$ROOT_VICTIM" || fail "root's victim process did not start"

NF=forge-$TAG
cat >"$W/$NF.yaml" <<EOF
---
name: $NF
placement: SAME_INFRA
execution: parallel
---
name: a
num_nodes: 2
run: |
  echo ready
  exec sleep 300
EOF
chmod 644 "$W/$NF.yaml"
jg_as_submit "$UH" "$W/$NF.yaml"; GF=$GID
wait_log "$GF" "(a-0) ready" 20
wait_log "$GF" "(a-1) ready" 20
GD=$JGSCHED_HOME/state/groups/$GF
# H writes the lines the shim would: the latest `started` line of each node
# names a victim (with its real start time, so only a pid check stops it).
hostile "printf '1 started %s %s\n' $ROOT_VICTIM $(starttime "$ROOT_VICTIM") >>$GD/a-0/status" ||
    fail "$UH cannot append to its own node's status file"
hostile "printf '1 started %s %s\n' $USER_VICTIM $(starttime "$USER_VICTIM") >>$GD/a-1/status" ||
    fail "$UH cannot append to its own node's status file"
jg_as "$UH" cancel "$GF"
[ "$RC" -eq 0 ] || fail "'$LAST_CMD' exited $RC"
wait_state "$GF" CANCELLED 20
wait_cleaned "$GD/a-0"
wait_cleaned "$GD/a-1"
alive "$ROOT_VICTIM" || fail "cancel of $UH's group killed root's process $ROOT_VICTIM named in a forged status line"
alive "$USER_VICTIM" || fail "cancel of $UH's group killed $UV's process $USER_VICTIM named in a forged status line"
left=$(h_left "$GF" "$NF")
# shellcheck disable=SC2086
[ -z "$left" ] || fail "processes of $UH's group left after cancel: $(describe_pids $left)"
ok "forged status lines: root's and $UV's processes survive the cancel; the group cancels with no orphan"

# ---- (b) tmp/ swapped for a link during attempt 1 of a restarting job
NT=tmpswap-$TAG
TARGET=$W/root-dir
mkdir -m 755 "$TARGET" && chmod 755 "$TARGET"
cat >"$W/$NT.yaml" <<EOF
---
name: $NT
placement: SAME_INFRA
execution: parallel
---
name: r
resources:
  job_recovery:
    max_restarts_on_errors: 1
run: |
  if [ "\$JGSCHED_ATTEMPT" = 1 ]; then
    echo ready-1
    while [ ! -e $W/go-$NT ]; do sleep 0.1; done
    exit 1
  fi
  echo attempt-\$JGSCHED_ATTEMPT
EOF
chmod 644 "$W/$NT.yaml"
jg_as_submit "$UH" "$W/$NT.yaml"; GT=$GID
wait_log "$GT" "ready-1" 20
ND=$JGSCHED_HOME/state/groups/$GT/r-0
if [ -d "$ND/tmp" ]; then
    hostile "cd $ND && mv tmp tmp.old && ln -s $TARGET tmp" || fail "$UH cannot swap its node's tmp"
    touch "$W/go-$NT"
    wait_end "$GT" 30
    mode=$(stat -c %a "$TARGET")
    assert_eq "$mode" 755 "mode of $TARGET, which $UH linked as the node's tmp before its restart"
    show_json "$GT"
    reason=$(printf '%s' "$SHOW" | jq -r '[.. | strings | select(test("tmp: it is not a directory"))] | length')
    [ "$reason" -gt 0 ] || fail_group "$GT" "show --json of group $GT does not say why attempt 2 was refused"
    ok "a link swapped in for the node's tmp is refused at the restart; its target stays 0755 ($END_STATE)"
else
    touch "$W/go-$NT"
    wait_end "$GT" 30
    echo "# skip (b): nodes have no tmp of their own here (no mount namespaces)"
fi
left=$(h_left "$GT" "$NT")
# shellcheck disable=SC2086
[ -z "$left" ] || fail "processes of $UH's group left after it ended: $(describe_pids $left)"

# ---- (c) a FIFO in place of a running node's output.log
NL=fifo-$TAG
cat >"$W/$NL.yaml" <<EOF
---
name: $NL
placement: SAME_INFRA
execution: parallel
---
name: f
run: |
  echo ready
  exec sleep 300
EOF
chmod 644 "$W/$NL.yaml"
jg_as_submit "$UH" "$W/$NL.yaml"; GL=$GID
wait_log "$GL" "ready" 20
ND=$JGSCHED_HOME/state/groups/$GL/f-0
hostile "rm $ND/output.log && mkfifo $ND/output.log" || fail "$UH cannot replace its output.log"
jg_as "$UH" logs "$GL"
[ "$RC" -eq 0 ] || fail "logs of a node whose output.log was swapped for a FIFO failed: $ERR"
assert_contains "$OUT" "ready" "logs of a node whose output.log was swapped for a FIFO"
jg_as "$UV" daemon status
[ "$RC" -eq 0 ] || fail "'$LAST_CMD' exited $RC"
assert_contains "$OUT" "is running" "daemon status after the FIFO"
jg_as "$UV" queue
[ "$RC" -eq 0 ] || fail "'$LAST_CMD' exited $RC"
ok "a FIFO for output.log: logs still shows the output, daemon status and queue answer at once"
jg_as "$UH" cancel "$GL"
[ "$RC" -eq 0 ] || fail "'$LAST_CMD' exited $RC"
wait_state "$GL" CANCELLED 20
wait_cleaned "$ND"
left=$(h_left "$GL" "$NL")
# shellcheck disable=SC2086
[ -z "$left" ] || fail "processes of $UH's group left after cancel: $(describe_pids $left)"
jg_as "$UV" daemon status
[ "$RC" -eq 0 ] || fail "the daemon does not answer after the FIFO group's cleanup"
ok "the group with a FIFO for output.log cancels cleanly"

if ! alive "$ROOT_VICTIM" || ! alive "$USER_VICTIM"; then
    fail "a victim died during the test"
fi
jg_done
