# shellcheck shell=bash
# tools/daemon.sh - helpers to kill and restart the instance's daemon, for the
# integration tests about crashes (sourced after lib.sh, not run).
#
# Everything here acts on the daemon of $JGSCHED_HOME through its pid file and
# keeps JG_DAEMON_PID (which jg_teardown uses) up to date.  While the daemon is
# down a test must not run the CLI: a CLI that finds no daemon starts one.

# The pid recorded in the pid file ("" if none).
daemon_pidfile_pid() {
    tr -dc '0-9' <"$JGSCHED_HOME/jgschedd.pid" 2>/dev/null
}

# wait_pid_gone PID SECONDS: true once PID no longer exists.
wait_pid_gone() {
    local pid=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# daemon_kill SIGNAL: sends SIGNAL to the daemon named by the pid file and
# waits until it is gone (fails after 10 s).
daemon_kill() {
    local sig=$1 pid
    pid=$(daemon_pidfile_pid)
    [ -n "$pid" ] || fail "no pid in $JGSCHED_HOME/jgschedd.pid"
    [ "$pid" = "$JG_DAEMON_PID" ] || fail "pid file says $pid, the daemon started was $JG_DAEMON_PID"
    kill -"$sig" "$pid" 2>/dev/null || fail "kill -$sig $pid: no such daemon"
    wait_pid_gone "$pid" 10 || fail "the daemon (pid $pid) is still alive 10 s after SIG$sig"
}

# daemon_start [ARGS...]: starts "$JGSCHEDD" ARGS on $JGSCHED_HOME (under
# $JG_DAEMON_WRAP, as jg_setup does); it must exit 0 once ready, write a fresh
# pid file and answer ping.  Sets JG_DAEMON_PID.
# shellcheck disable=SC2120
daemon_start() {
    local old=$JG_DAEMON_PID rc pid="" i
    # shellcheck disable=SC2086
    timeout -k 5 30 ${JG_DAEMON_WRAP:-} "$JGSCHEDD" "$@" >"$JG_WORK/jgschedd.restart" 2>&1 </dev/null
    rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$JG_WORK/jgschedd.restart" >&2
        fail "jgschedd $* exited $rc at restart"
    fi
    for ((i = 0; i < 50; i++)); do
        pid=$(daemon_pidfile_pid)
        [ -n "$pid" ] && [ "$pid" != "$old" ] && kill -0 "$pid" 2>/dev/null && break
        sleep 0.1
    done
    if [ -z "$pid" ] || [ "$pid" = "$old" ]; then
        fail "no fresh pid in $JGSCHED_HOME/jgschedd.pid after restart"
    fi
    JG_DAEMON_PID=$pid
    jgc daemon status
    [ "$RC" -eq 0 ] || fail "the restarted daemon does not answer 'daemon status'"
    assert_contains "$OUT" "pid:     $pid" "daemon status after restart"
}

# Pids of this instance's network keepers (`jgsched-shim --hold <group dir>`).
keeper_pids() {
    local p
    for p in $(pgrep -f -- "--hold $(jg_regex_escape "$JGSCHED_HOME")/" 2>/dev/null); do
        [ "$p" = "$$" ] || echo "$p"
    done
}
