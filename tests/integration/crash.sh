#!/usr/bin/env bash
# crash.sh - jgschedd dies (kill -9 or SIGTERM) and comes back: nothing it
# was running is lost.  One kill -9 hits a group in setup (its setup sleeps
# 3 s), groups in run, a group whose job exits 7 while the daemon is down, two
# groups being cancelled (one traps TERM and takes 3 s to exit, one ignores
# TERM and needs the SIGKILL) and a group waiting PENDING for capacity.  After
# the restart: running nodes were never killed and their output is complete,
# exits that happened meanwhile are recorded with their codes, setup is not run
# twice, cancels finish, the pending group is still PENDING and starts when
# capacity frees, and nothing is left behind (processes, network keepers).
# Then: SIGTERM leaves a running node alone and the next daemon finishes its
# group; `jgsched daemon status|stop`; a corrupt store, an empty (0 byte) one
# and one from a newer schema are refused at start with a message naming the
# file, which is left unchanged.  Then kill -9 during a cancel's grace and
# during a restart's delay: the next daemon finishes the cancel and carries the
# restart out after the rest of its delay.  Last, a job's exit code is its
# failing rank's, not a stopped sibling's 143, also after a restart.
#
# While the daemon is down the test never runs the CLI (it would start one);
# it watches the nodes through files they write in $JG_WORK instead.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/tools/daemon.sh
. "$(dirname "$0")/tools/daemon.sh"

# Capacity 4 cpus: four 1-cpu groups run, a 4-cpu group waits for all of them.
JG_CONFIG='backends:
  local:
    capacity: {cpus: 4, memory: 64GB}
    nat: false
stop_grace: 5s'
jg_setup

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
W=$JG_WORK

# group_yaml NAME CPUS SETUP RUN: a one-job group (job "main") into $W/NAME.yaml.
group_yaml() {
    local name=$1 cpus=$2 setup=$3 run=$4
    {
        printf -- '---\nname: %s\nplacement: SAME_INFRA\nexecution: parallel\n---\n' "$name"
        printf 'name: main\nresources:\n  cpus: %s\n' "$cpus"
        if [ -n "$setup" ]; then
            printf 'setup: |\n'
            printf '%s\n' "$setup" | sed 's/^/  /'
        fi
        printf 'run: |\n'
        printf '%s\n' "$run" | sed 's/^/  /'
    } >"$W/$name.yaml"
}

# group_pids NAME ID: the processes of a group's nodes.
group_pids() {
    pids_with_env "SKYPILOT_JOBGROUP_NAME=$1" "JGSCHED_GROUP_ID=$2"
}

# group_long_pids NAME ID: the same without the short-lived `sleep`s of their loops.
group_long_pids() {
    local p c
    for p in $(group_pids "$1" "$2"); do
        c=$(cat "/proc/$p/comm" 2>/dev/null)
        [ -n "$c" ] && [ "$c" != sleep ] && echo "$p"
    done
    return 0
}

# wait_file PATH SECONDS: true once PATH exists.
wait_file() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -e "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- the groups the first crash hits
group_yaml "tick-$TAG" 1 "" "i=0
while [ ! -e $W/stop-tick ]; do
  i=\$((i + 1))
  echo \"tick \$i\"
  echo \$i >$W/tick.count
  sleep 0.2
done
echo \"tick-done \$i\""

group_yaml "exit7-$TAG" 1 "" "echo started
while [ ! -e $W/go7 ]; do sleep 0.1; done
echo exiting-7
exit 7"

group_yaml "trapper-$TAG" 1 "" "trap 'echo got-term; sleep 3; echo term-done; touch $W/trapper.done; exit 0' TERM
echo ready
while true; do sleep 0.2; done"

group_yaml "setup-$TAG" 1 "echo setup-begin
sleep 3
echo setup-end
touch $W/setup.done" "echo run-begin
echo run-end"

group_yaml "pending-$TAG" 4 "" "echo pending-ran"

submit_detached "$W/tick-$TAG.yaml"; GT=$GID
submit_detached "$W/exit7-$TAG.yaml"; G7=$GID
submit_detached "$W/trapper-$TAG.yaml"; GC=$GID
wait_log "$GT" "tick 2" 20
wait_log "$G7" "started" 20
wait_log "$GC" "ready" 20
submit_detached "$W/setup-$TAG.yaml"; GU=$GID
wait_log "$GU" "setup-begin" 20
submit_detached "$W/pending-$TAG.yaml"; GP=$GID
wait_state "$GP" PENDING 10
jgc_ok queue --json
pend_reason=$(printf '%s' "$OUT" | jq -r --argjson id "$GP" '(if type == "array" then . else .groups end)[] | select(.id == $id) | .reason')
[ -n "$pend_reason" ] || fail "the pending group $GP has no reason in queue --json"
ok "4 one-cpu groups run (one in setup), a 4-cpu group waits PENDING: $pend_reason"

jgc_ok cancel "$GC"
wait_log "$GC" "got-term" 10
[ "$(group_state "$GC")" = CANCELLING ] || fail_group "$GC" "group $GC is not CANCELLING while its node handles TERM"
tick_pid=$(group_long_pids "tick-$TAG" "$GT" | head -n 1)
[ -n "$tick_pid" ] || fail "no process of the ticker group $GT found"

# ---- kill -9: setup in progress, runs in progress, a cancel in progress
daemon_kill 9
before=$(cat "$W/tick.count")
touch "$W/go7"
wait_file "$W/setup.done" 10 || fail "the setup did not finish while the daemon was down"
wait_file "$W/trapper.done" 10 || fail "the TERM-trapping node did not finish its trap while the daemon was down"
for ((i = 0; i < 50; i++)); do
    [ -z "$(group_pids "exit7-$TAG" "$G7")" ] && break
    sleep 0.1
done
[ -z "$(group_pids "exit7-$TAG" "$G7")" ] || fail "the exit-7 job is still running while the daemon is down"
for ((i = 0; i < 100; i++)); do      # a tick comes every 0.2 s: wait for one, at most 10 s
    after=$(cat "$W/tick.count")
    [ "$after" -gt "$before" ] && break
    sleep 0.1
done
[ "$after" -gt "$before" ] || fail "the ticker stopped ticking when the daemon died (count $before -> $after)"
kill -0 "$tick_pid" 2>/dev/null || fail "the ticker's process $tick_pid died with the daemon"
ok "after kill -9 of the daemon: running nodes go on (ticks $before -> $after), setup finishes, a job exits 7"

daemon_start
st=$(group_state "$GP")
[ "$st" = PENDING ] || fail_group "$GP" "the pending group is '$st' right after the restart, expected PENDING (capacity is still taken)"
wait_end "$G7" 15
show_json "$G7"
assert_eq "$(sq 'grp.state')" FAILED "state of the group whose job exited 7 while the daemon was down"
assert_eq "$(job_field main exit_code)" 7 "exit code recorded for the job that exited while the daemon was down"
assert_eq "$(sq 'grp.nodes[0].exit_code')" 7 "exit code of node main-0"
ok "an exit 7 that happened while the daemon was down is recorded after the restart: FAILED, exit 7"

wait_state "$GC" CANCELLED 15
jgc_ok logs "$GC"
assert_contains "$OUT" "(main-0) term-done" "logs of the TERM-trapping node"
ok "a cancel interrupted by the crash finishes: the TERM-trapping node ran its trap, group CANCELLED"

wait_state "$GU" SUCCEEDED 20
jgc_ok logs "$GU"
assert_eq "$(grep -c '^(main-0) setup-begin$' <<<"$OUT")" 1 "count of setup-begin (setup must not run twice)"
assert_eq "$(grep -c '^(main-0) setup-end$' <<<"$OUT")" 1 "count of setup-end"
assert_eq "$(grep -c '^(main-0) run-end$' <<<"$OUT")" 1 "count of run-end"
ok "a group killed in setup runs its setup once, then its run after the restart: SUCCEEDED"

st=$(group_state "$GT")
[ "$st" = RUNNING ] || fail_group "$GT" "the ticker group is '$st' after the restart, expected RUNNING"
st=$(group_state "$GP")
[ "$st" = PENDING ] || fail_group "$GP" "the pending group is '$st' while the ticker still holds a cpu"
touch "$W/stop-tick"
wait_state "$GT" SUCCEEDED 15
jgc_ok logs "$GT"
n=$(grep -c '^(main-0) tick [0-9]*$' <<<"$OUT")
last=$(sed -n 's/^(main-0) tick-done \([0-9]*\)$/\1/p' <<<"$OUT")
[ -n "$last" ] || fail "no tick-done line in the ticker's logs"
assert_eq "$n" "$last" "number of tick lines in the logs (every tick, printed before, during and after the crash)"
seq_ok=$(grep '^(main-0) tick [0-9]*$' <<<"$OUT" | awk '{ if ($3 != NR) { print "bad"; exit } } END { print "good" }' | head -n 1)
assert_eq "$seq_ok" good "tick lines in order, each once"
ok "the ticker ran through the crash: $last ticks logged in order, SUCCEEDED"

wait_state "$GP" SUCCEEDED 20
ok "the pending group stayed PENDING across the crash and ran when capacity freed"

assert_no_leftovers "tick-$TAG" "$GT" "exit7-$TAG" "$G7" "trapper-$TAG" "$GC" \
    "setup-$TAG" "$GU" "pending-$TAG" "$GP"
left=$(keeper_pids)
# shellcheck disable=SC2086
[ -z "$left" ] || fail "network keepers left behind: $(describe_pids $left)"
ok "nothing left behind: no node process, no network keeper of the instance"

# ---- SIGTERM: the daemon stops, the node keeps running, the next daemon finishes the group
group_yaml "term-$TAG" 1 "" "echo started
while [ ! -e $W/stop-term ]; do sleep 0.1; done
echo finished"
submit_detached "$W/term-$TAG.yaml"; GM=$GID
wait_log "$GM" "started" 20
term_pids=$(group_long_pids "term-$TAG" "$GM")
[ -n "$term_pids" ] || fail "no process of group $GM"
# shellcheck disable=SC2086
term_desc=$(describe_pids $term_pids | tr -s ' \n' ' ')
daemon_kill TERM
sleep 0.5
for p in $term_pids; do
    kill -0 "$p" 2>/dev/null || fail "node process $p ($term_desc) of group $GM died when the daemon got SIGTERM"
done
ok "SIGTERM stops the daemon and leaves the running node alone"
daemon_start
st=$(group_state "$GM")
[ "$st" = RUNNING ] || fail_group "$GM" "group $GM is '$st' after the restart, expected RUNNING"
touch "$W/stop-term"
wait_state "$GM" SUCCEEDED 15
jgc_ok logs "$GM"
assert_contains "$OUT" "(main-0) finished" "logs of the group that outlived a SIGTERM"
assert_no_leftovers "term-$TAG" "$GM"
ok "the restarted daemon picks the node up and the group completes SUCCEEDED"

# ---- jgsched daemon status / stop
jgc_ok daemon status
assert_contains "$OUT" "is running" "daemon status"
assert_contains "$OUT" "pid:     $JG_DAEMON_PID" "daemon status"
assert_contains "$OUT" "home:    $JGSCHED_HOME" "daemon status"
jgc_ok daemon stop
assert_contains "$OUT" "stopped (pid $JG_DAEMON_PID)" "daemon stop"
wait_pid_gone "$JG_DAEMON_PID" 5 || fail "the daemon (pid $JG_DAEMON_PID) is alive after 'daemon stop'"
jgc daemon status
assert_eq "$RC" 3 "exit status of 'daemon status' with no daemon"
ok "daemon status names the pid and home; daemon stop stops it; status then exits 3"

# ---- a corrupt store and one from a newer schema are refused, untouched
DB=$JGSCHED_HOME/jgsched.db
[ -f "$DB" ] || fail "no store at $DB"
rm -f "$DB-wal" "$DB-shm" "$DB-journal"
cp "$DB" "$W/good.db"
for ((i = 0; i < 200; i++)); do echo "this is not an sqlite database, line $i"; done >"$DB"
cp "$DB" "$W/garbage.db"
timeout -k 5 30 "$JGSCHEDD" >"$W/corrupt.out" 2>&1 </dev/null
rc=$?
msg=$(cat "$W/corrupt.out")
LAST_CMD="jgschedd (store overwritten with garbage)"; OUT=$msg; ERR=""; RC=$rc
[ "$rc" -ne 0 ] || { JG_DAEMON_PID=$(daemon_pidfile_pid); fail "jgschedd started on a garbage store"; }
case $rc in 124 | 137) fail "jgschedd hung on a garbage store" ;; esac
assert_contains "$msg" "$DB" "jgschedd's message about a garbage store"
cmp -s "$DB" "$W/garbage.db" || fail "jgschedd modified the garbage store file"
jgc daemon status
assert_eq "$RC" 3 "exit status of 'daemon status' after a refused start"
ok "a garbage store is refused at start (exit $rc): $(head -n 1 <<<"$msg")"

: >"$DB"
timeout -k 5 30 "$JGSCHEDD" >"$W/empty.out" 2>&1 </dev/null
rc=$?
msg=$(cat "$W/empty.out")
LAST_CMD="jgschedd (store emptied to 0 bytes)"; OUT=$msg; ERR=""; RC=$rc
[ "$rc" -ne 0 ] || { JG_DAEMON_PID=$(daemon_pidfile_pid); fail "jgschedd took an empty store for a new one"; }
assert_contains "$msg" "$DB" "jgschedd's message about an empty store"
assert_contains "$msg" "empty" "jgschedd's message about an empty store"
[ ! -s "$DB" ] || fail "jgschedd wrote into the empty store file"
ok "an empty (0 byte) store is refused at start (exit $rc), not restarted with id 1"

if command -v sqlite3 >/dev/null; then
    cp "$W/good.db" "$DB"
    sqlite3 "$DB" 'PRAGMA user_version = 999;' || fail "sqlite3 could not set user_version"
    rm -f "$DB-wal" "$DB-shm" "$DB-journal"
    cp "$DB" "$W/newer.db"
    timeout -k 5 30 "$JGSCHEDD" >"$W/newer.out" 2>&1 </dev/null
    rc=$?
    msg=$(cat "$W/newer.out")
    LAST_CMD="jgschedd (store with user_version 999)"; OUT=$msg; ERR=""; RC=$rc
    [ "$rc" -ne 0 ] || { JG_DAEMON_PID=$(daemon_pidfile_pid); fail "jgschedd started on a store from a newer schema"; }
    assert_contains "$msg" "$DB" "jgschedd's message about a newer store"
    contains_ci "$msg" "newer" || fail "jgschedd's message about a store of schema 999 does not say 'newer': $msg"
    cmp -s "$DB" "$W/newer.db" || fail "jgschedd modified the store of a newer schema"
    ok "a store from a newer schema is refused at start (exit $rc), file unchanged"
else
    echo "# skip: sqlite3 not installed, the newer-schema store is not checked"
fi

# Put the good store back and check the daemon starts on it (teardown stops it).
cp "$W/good.db" "$DB"
daemon_start
jgc_ok queue -a --json
assert_eq "$(printf '%s' "$OUT" | jq '(if type == "array" then . else .groups end) | length')" 6 "groups in the restored store"
ok "the daemon starts again on the intact store with all 6 groups"

# ---- kill -9 during the grace of a cancel: a node that ignores TERM must still
# get its SIGKILL from the next daemon (stop_grace 5 s), and the group end CANCELLED
group_yaml "stubborn-$TAG" 1 "" "trap 'echo ignoring-term' TERM
echo ready
while true; do sleep 0.2; done"
submit_detached "$W/stubborn-$TAG.yaml"; GS=$GID
wait_log "$GS" "ready" 20
jgc_ok cancel "$GS"
wait_log "$GS" "ignoring-term" 10
daemon_kill 9
daemon_start
wait_state "$GS" CANCELLED 15
assert_no_leftovers "stubborn-$TAG" "$GS"
ok "a cancel interrupted by kill -9 finishes: the TERM-ignoring node is killed, group CANCELLED"

# ---- kill -9 while a restart waits for its delay: the next daemon carries the
# restart out after what is left of the delay, charged to the counter decided
cat >"$W/later.lua" <<'EOF'
return {
  on_node_exit = function(group, job, event)
    if event.exit_code == 0 then return "continue" end
    return { action = "restart_job", count = "restarts", delay = 5, reason = "exit " .. event.exit_code .. ": again in 5 s" }
  end,
}
EOF
group_yaml "later-$TAG" 1 "" "if [ ! -e $W/later.once ]; then touch $W/later.once; echo first; exit 3; fi
echo second"
submit_detached "$W/later-$TAG.yaml" --policy "$W/later.lua"; GL=$GID
wait_job_state "$GL" main RECOVERING 20
daemon_kill 9
daemon_start
wait_state "$GL" SUCCEEDED 20
show_json "$GL"
assert_eq "$(job_field main attempt)" 2 "attempt of the job restarted across the crash"
assert_eq "$(job_field main restarts)" 1 "restarts of the job restarted across the crash"
waited=$(sq '(job_events("main"; "RECOVERING") | first | .ts) as $r |
    [grp.events[] | select(.reason | startswith("attempt 2: relaunching")) | .ts] | first - $r')
fle 4.5 "$waited" || fail "the relaunch came $waited s after the restart was decided, not after its 5 s delay"
jgc_ok logs "$GL"
assert_contains "$OUT" "(main-0) first" "logs of the restarted job"
assert_contains "$OUT" "(main-0) second" "logs of the restarted job"
assert_no_leftovers "later-$TAG" "$GL"
ok "a restart waiting for its delay when the daemon is killed -9 keeps its delay (${waited}s) and counter: attempt 2, SUCCEEDED"

# ---- the job's exit code is that of the rank that failed, not that of a
# sibling stopped because of it (143), and a daemon restart keeps it
cat >"$W/ranks-$TAG.yaml" <<EOF
---
name: ranks-$TAG
placement: SAME_INFRA
execution: parallel
---
name: main
num_nodes: 2
resources:
  cpus: 1
run: |
  if [ "\$SKYPILOT_NODE_RANK" = 0 ]; then sleep 1; exit 3; fi
  while true; do sleep 0.2; done
EOF
submit_detached "$W/ranks-$TAG.yaml"; GR=$GID
wait_state "$GR" FAILED 30
show_json "$GR"
assert_eq "$(job_field main exit_code)" 3 "exit code of a job whose rank 0 exited 3"
daemon_kill TERM
daemon_start
show_json "$GR"
assert_eq "$(job_field main exit_code)" 3 "exit code of the job after a daemon restart"
assert_no_leftovers "ranks-$TAG" "$GR"
ok "a job's exit code is its failing rank's (3), not its stopped sibling's, also after a restart"

jg_done
