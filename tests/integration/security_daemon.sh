#!/usr/bin/env bash
# security_daemon.sh - a hostile local user tries to hang root's jgschedd
# (--system) for everyone else; docs/security.md says what must hold.
#
# Throwaway users: A and B attack, C is the bystander whose requests must
# still be answered.  The attacks run through tools/jgattack.py as A (and B),
# bounded in count and time, on the daemon's Unix socket only:
#   (a) fair share: A pipelines a million pings on one connection; while it
#       does, C's `daemon status` and `queue` answer within 3 s.
#   (d) log forging: A's policy prints, and fails with, text holding a
#       newline, a fake log header and a terminal escape; none of it makes a
#       line of its own in the daemon log or puts an ESC byte there.
#   (c) unfinished requests: A opens 500 connections and sends 1 MiB without
#       a newline on each; the daemon's peak RSS (VmHWM) stays under 100 MB,
#       and every connection is closed with an error naming the per-user bound
#       on unfinished requests (or the connection cap) or, for those within
#       the bound, the 10 s request timeout.
#   (b) connection flood, with the daemon restarted under `ulimit -n 128`: A
#       opens 300 connections (64 served, the rest refused with "too many
#       connections"), then B opens 100 more until the daemon runs out of
#       descriptors.  Meanwhile C's open connection is answered within 3 s,
#       the daemon uses at most 0.5 s of CPU over a 3 s window (no accept busy
#       loop) and its log grows by less than 64 KiB; once the attackers let
#       go, a new connection of C is served.
# The CPU check samples the daemon over a fixed 3 s: a measurement interval,
# not a wait for a state.  JG_SEC_PHASES (default "a d c b") runs a subset,
# e.g. to watch one attack succeed against an older daemon.  Users, their
# processes and the instance are removed on any exit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools python3 prlimit

UA=jgsa_a_$$
UB=jgsa_b_$$
UC=jgsa_c_$$

# The attackers go before the daemon is stopped: a flood could hold it up.
jg_extra_teardown() {
    local p
    [ -n "${JG_WORK:-}" ] && touch "$JG_WORK/stop-b" 2>/dev/null
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    jg_kill_throwaway_processes
}

for u in "$UA" "$UB" "$UC"; do
    jg_throwaway_user "$u"
done

# An AddressSanitizer build keeps freed memory in quarantine (256 MB by
# default), which would count in the daemon's RSS as if it held it.
case $(nm -D "$JGSCHEDD" 2>/dev/null) in
    *__asan_init*) export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" ;;
esac

JG_DAEMON_ARGS=--system
jg_setup
SOCK=$JGSCHED_HOME/jgsched.sock
LOG=$JGSCHED_HOME/jgschedd.log
W=$JG_WORK
TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
# The users run the tool from a directory they can read.
ATTACK=$W/jgattack.py
cp "$(dirname "$0")/tools/jgattack.py" "$ATTACK"
chmod 755 "$W"
chmod 644 "$ATTACK"

# attack USER OUTFILE SCENARIO ARGS...: jgattack.py as USER in the background
# (its pid in APID), output to OUTFILE.
attack() {
    local user=$1 out=$2
    shift 2
    runuser -u "$user" -- python3 "$ATTACK" "$SOCK" "$@" >"$out" 2>&1 </dev/null &
    APID=$!
}

# wait_for_line FILE TEXT LIMIT_S PID: waits until FILE has a line TEXT.
wait_for_line() {
    local file=$1 text=$2 limit=$3 pid=$4 i
    for ((i = 0; i < limit * 10; i++)); do
        grep -qx "$text" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    grep -qx "$text" "$file" 2>/dev/null ||
        fail "the attack did not print '$text' within ${limit}s: $(tail -n 5 "$file")"
}

# result_of FILE: the JSON of the attack's "result:" line.
result_of() {
    sed -n 's/^result: //p' "$1" | tail -n 1
}

# finish PID FILE: waits for an attack to end; its result goes to RES.
finish() {
    wait "$1"
    RES=$(result_of "$2")
    [ -n "$RES" ] || fail "the attack left no result: $(tail -n 5 "$2")"
}

cpu_ticks() {       # utime + stime of the daemon, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$JG_DAEMON_PID/stat"
}

log_size() {
    stat -c %s "$LOG"
}

still_same_daemon() {   # WHAT: the same daemon answers C
    jg_as "$UC" daemon status
    [ "$RC" -eq 0 ] || fail "after $1: 'daemon status' as $UC exited $RC"
    assert_contains "$OUT" "pid:     $JG_DAEMON_PID" "daemon status after $1 (the same daemon)"
}

# restart_daemon WRAP...: stops the daemon and starts it again under WRAP.
restart_daemon() {
    local old=$JG_DAEMON_PID i
    jgc daemon stop
    for ((i = 0; i < 50; i++)); do
        kill -0 "$old" 2>/dev/null || break
        sleep 0.2
    done
    kill -0 "$old" 2>/dev/null && fail "the daemon (pid $old) did not stop"
    timeout -k 5 30 "$@" "$JGSCHEDD" --system >"$W/restart.out" 2>&1 ||
        fail "jgschedd did not start again: $(cat "$W/restart.out")"
    for ((i = 0; i < 25; i++)); do
        JG_DAEMON_PID=$(tr -dc '0-9' <"$JGSCHED_HOME/jgschedd.pid" 2>/dev/null)
        [ -n "$JG_DAEMON_PID" ] && [ "$JG_DAEMON_PID" != "$old" ] && break
        sleep 0.2
    done
    kill -0 "$JG_DAEMON_PID" 2>/dev/null || fail "no new daemon after the restart"
}

jg_as "$UC" daemon status
[ "$RC" -eq 0 ] || fail "$UC cannot reach the --system daemon"

# ---- (a) one connection pipelines a million pings
phase_a() {
    attack "$UA" "$W/a.out" pipeline 1000000
    APA=$APID
    wait_for_line "$W/a.out" started 30 "$APA"
    worst=0
    for op in "daemon status" queue "daemon status" queue; do
        # shellcheck disable=SC2086
        jg_as "$UC" $op
        [ "$RC" -eq 0 ] || fail "'$op' as $UC exited $RC while $UA pipelines pings"
        fle "$TOOK" "$worst" || worst=$TOOK
        fle "$TOOK" 3 || fail "'$op' as $UC took ${TOOK}s while $UA pipelines pings (limit 3 s)"
    done
    kill -0 "$APA" 2>/dev/null ||
        fail "the pipelining attack ended before $UC was measured: $(tail -n 2 "$W/a.out")"
    kill "$APA" 2>/dev/null
    for p in $(pgrep -u "$UA" 2>/dev/null); do kill "$p" 2>/dev/null; done
    wait "$APA" 2>/dev/null
    still_same_daemon "the pipelining attack"
    ok "while $UA pipelines a million pings on one connection, $UC's status and queue answer (slowest ${worst}s)"
}

# ---- (d) text from a user's policy cannot forge log lines
phase_d() {
    FORGED="2000-01-01T00:00:00.000Z error FORGED-$TAG"
    cat >"$W/evil.lua" <<EOF
return {
  on_submit = function(group, user)
    print("printed-$TAG\n$FORGED-print \27[31mred\27[0m")
    return true
  end,
  place = function(group, infras)
    error("raised-$TAG\n$FORGED-error \27]0;title\7", 0)
  end,
}
EOF
    cat >"$W/g.yaml" <<EOF
---
name: forge-$TAG
placement: SAME_INFRA
execution: parallel
---
name: t
resources:
  cpus: 1
run: "true"
EOF
    chmod 644 "$W/evil.lua" "$W/g.yaml"
    jg_as "$UA" submit "$W/g.yaml" --infra local --policy "$W/evil.lua" -d
    [ "$RC" -eq 0 ] || fail "submit with a policy of $UA's exited $RC"
    for ((i = 0; i < 100; i++)); do
        grep -q "raised-$TAG" "$LOG" && grep -q "printed-$TAG" "$LOG" && break
        sleep 0.2
    done
    grep -q "printed-$TAG" "$LOG" ||
        fail "the policy's print never reached the daemon log: this check would prove nothing"
    grep -q "raised-$TAG" "$LOG" ||
        fail "the policy's error never reached the daemon log: this check would prove nothing"
    forged=$(grep -c "^2000-01-01T00:00:00.000Z error FORGED-$TAG" "$LOG")
    [ "$forged" -eq 0 ] || fail "a user's policy wrote $forged line(s) of its own into the daemon log: $(grep "FORGED-$TAG" "$LOG")"
    grep -qF "printed-$TAG\\n$FORGED-print" "$LOG" ||
        fail "the policy's print is not in the log in escaped form: $(grep "$TAG" "$LOG")"
    esc=$(grep -c $'\e' "$LOG")
    [ "$esc" -eq 0 ] || fail "$esc line(s) of the daemon log hold a raw ESC byte"
    ok "a user's policy text with newlines and terminal escapes stays escaped on one log line"
}

# ---- (c) 500 connections, each 1 MiB without a newline
phase_c() {
    attack "$UA" "$W/c.out" partial 500 1048576 60
    finish "$APID" "$W/c.out"
    hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$JG_DAEMON_PID/status")
    LAST_CMD="jgattack.py partial 500 1048576 60"
    OUT=$RES
    [ "$hwm" -lt 102400 ] || fail "daemon peak RSS (VmHWM) ${hwm} kB after 500 x 1 MiB unfinished requests (bound 100 MB)"
    assert_eq "$(jq '.still_open' <<<"$RES")" 0 "connections the daemon left open 60 s after 1 MiB without a newline"
    timeouts=$(jq '[.replies | to_entries[] | select(.key | test("not completed within 10 s")) | .value] | add // 0' <<<"$RES")
    capped=$(jq '[.replies | to_entries[] | select(.key | test("too many connections")) | .value] | add // 0' <<<"$RES")
    bounded=$(jq '[.replies | to_entries[] | select(.key | test("MiB of unfinished requests")) | .value] | add // 0' <<<"$RES")
    [ "$timeouts" -ge 1 ] || fail "no connection was closed with the request timeout error"
    [ "$bounded" -ge 1 ] || fail "no connection was closed by the per-user bound on unfinished requests"
    still_same_daemon "500 unfinished 1 MiB requests"
    ok "500 x 1 MiB without a newline: peak RSS ${hwm} kB; $capped refused (cap), $bounded closed at the per-user byte bound, $timeouts timed out"
}

# ---- (b) connection flood, at a 128-descriptor limit
phase_b() {
    restart_daemon prlimit --nofile=128:128 --
    attack "$UC" "$W/b-c.out" steady "$W/stop-b" 120
    APC=$APID
    wait_for_line "$W/b-c.out" connected 20 "$APC"
    log0=$(log_size)
    attack "$UA" "$W/b-a.out" conns 300 "$W/stop-b" 120
    APA=$APID
    wait_for_line "$W/b-a.out" holding 60 "$APA"
    # A's own CLI is now refused, and says why.
    jg_as "$UA" daemon status
    [ "$RC" -ne 0 ] || fail "$UA's CLI was served beyond the per-user connection cap"
    assert_contains "$ERR" "too many connections: user $UA has 64 connections open" "$UA's CLI over the cap"
    attack "$UB" "$W/b-b.out" conns 100 "$W/stop-b" 120
    APB=$APID
    wait_for_line "$W/b-b.out" holding 60 "$APB"
    # The daemon now sits at its descriptor limit: measure what that costs it.
    cpu0=$(cpu_ticks)
    t0=$(date +%s.%N)
    sleep 3
    cpu1=$(cpu_ticks)
    window=$(fsub "$(date +%s.%N)" "$t0")
    hz=$(getconf CLK_TCK)
    cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
    logged=$(($(log_size) - log0))
    touch "$W/stop-b"
    finish "$APC" "$W/b-c.out"
    CRES=$RES
    finish "$APA" "$W/b-a.out"
    ARES=$RES
    finish "$APB" "$W/b-b.out"
    BRES=$RES
    LAST_CMD="jgattack.py conns (A: 300, B: 100)"
    OUT="A: $ARES
    B: $BRES
    C: $CRES"
    assert_eq "$(jq '.served' <<<"$ARES")" 64 "connections of $UA served (the per-user cap)"
    [ "$(jq '.refused' <<<"$ARES")" -ge 100 ] || fail "fewer than 100 of $UA's 300 connections were refused"
    jq -e '.refusals | keys | any(test("too many connections: user '"$UA"' has 64 connections open"))' <<<"$ARES" >/dev/null ||
        fail "the refused connections were not told why: $(jq -c '.refusals' <<<"$ARES")"
    [ "$(jq '.stalled' <<<"$BRES")" -ge 1 ] ||
        fail "$UB's connections never met the descriptor limit: this check would prove nothing"
    fle "$cpu" 0.5 || fail "the daemon used ${cpu}s of CPU in ${window}s at its descriptor limit (a busy loop)"
    [ "$logged" -lt 65536 ] || fail "the daemon log grew by $logged bytes during the flood"
    [ "$(jq '.failed | length' <<<"$CRES")" -eq 0 ] || fail "$UC's open connection failed during the flood"
    slowest=$(jq '.slowest_s' <<<"$CRES")
    fle "$slowest" 3 || fail "$UC's open connection waited ${slowest}s for a reply during the flood"
    # Once the attackers let go, newcomers are served again.
    for ((i = 0; i < 50; i++)); do
        jg_as "$UC" daemon status
        [ "$RC" -eq 0 ] && break
        sleep 0.2
    done
    still_same_daemon "the connection flood"
    ok "flood at 128 descriptors: $UA served 64 and refused $(jq '.refused' <<<"$ARES"), $UB stalled at the limit; daemon CPU ${cpu}s in ${window}s, log +$logged bytes; $UC's pings ≤ ${slowest}s"
}

# JG_SEC_PHASES picks attacks (e.g. "c" alone, to see one fail on an older
# daemon); b restarts the daemon, so it comes last.
for phase in ${JG_SEC_PHASES:-a d c b}; do
    "phase_$phase"
done
jg_done
