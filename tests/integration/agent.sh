#!/usr/bin/env bash
# agent.sh - jgsched-agent (src/agent/agent.c) as a local process, driven over
# its HTTP API with curl the way the Kubernetes backend drives it through
# pods/proxy: setup runs, run waits for /release and starts within 1 s of it,
# /hosts rewrites its block of a hosts file idempotently, /restart runs the
# node again in place as a new attempt (its TMPDIR kept, JGSCHED_ATTEMPT and
# SKYPILOT_TASK_ID updated), /finish exits with the code, /stop and SIGTERM
# stop the node within the grace and exit 128+signal, /kill stops the node
# but keeps the agent, and requests without the token or too large are
# refused.  Every agent is started and killed by this script, by pid.
# The job scripts are single-quoted on purpose: they expand in the node.
# shellcheck disable=SC2016
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

: "${JGSCHED_AGENT:?JGSCHED_AGENT must name the built jgsched-agent}"
command -v curl >/dev/null || fail "curl is needed"
command -v jq >/dev/null || fail "jq is needed"

WORK=$(mktemp -d /tmp/jgagent.XXXXXX)
AGENT_PIDS=()
cleanup() {
    local p
    for p in "${AGENT_PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    # Children of an agent live in sessions of their own: kill those the
    # scripts recorded (by pid, never by name).
    for p in "$WORK"/*/pids/*; do
        [ -f "$p" ] && kill -KILL "$(cat "$p")" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$WORK/token"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_agent NAME SETUP RUN [GRACE_MS]: an agent in $WORK/NAME; sets PORT,
# APID, DIR.  The scripts see $TMPDIR (kept across attempts, like a pod's
# /tmp emptyDir) and $PIDS (where they record their pids for cleanup).
start_agent() {
    local name=$1 setup=$2 run=$3 grace=${4:-5000}
    DIR="$WORK/$name"
    mkdir -p "$DIR/tmp" "$DIR/pids"
    [ -n "$setup" ] && printf '%s\n' "$setup" >"$DIR/setup"
    [ -n "$run" ] && printf '%s\n' "$run" >"$DIR/run"
    printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' >"$DIR/hosts"
    for _ in 1 2 3 4 5; do
        PORT=$(free_port)
        JGSCHED_AGENT_PORT=$PORT JGSCHED_AGENT_ADDRESS=127.0.0.1 \
        JGSCHED_AGENT_TOKEN_FILE="$WORK/token" JGSCHED_AGENT_SETUP_FILE="$DIR/setup" \
        JGSCHED_AGENT_RUN_FILE="$DIR/run" JGSCHED_AGENT_HOSTS_FILE="$DIR/hosts" \
        JGSCHED_AGENT_GRACE_MS=$grace TMPDIR="$DIR/tmp" PIDS="$DIR/pids" \
        JGSCHED_ATTEMPT=1 SKYPILOT_TASK_ID="jgsched-2026_g_${name}_7-0" \
            "$JGSCHED_AGENT" >"$DIR/stdout" 2>"$DIR/stderr" &
        APID=$!
        AGENT_PIDS+=("$APID")
        # Up once it answers; gone (port taken meanwhile): try another port.
        local i
        for i in $(seq 1 200); do
            if curl -s -o /dev/null -H "X-Jgsched-Token: $TOKEN" "http://127.0.0.1:$PORT/state"; then
                return 0
            fi
            kill -0 "$APID" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$APID" 2>/dev/null
        wait "$APID" 2>/dev/null
    done
    cat "$DIR/stderr" >&2
    fail "agent $name did not start"
}

# api METHOD PATH [curl args...]: $CODE the HTTP status, $BODY the answer.
api() {
    local method=$1 path=$2
    shift 2
    local out
    out=$(curl -s -m 70 -X "$method" -H "Authorization: Bearer $TOKEN" -w '\n%{http_code}' \
        "$@" "http://127.0.0.1:$PORT$path") || true
    CODE=${out##*$'\n'}
    BODY=${out%$'\n'*}
}

field() { jq -r ".$1" <<<"$BODY"; }

# wait_phase PHASE [ATTEMPT]: long-polls /state until the node is there.
wait_phase() {
    local want=$1 attempt=${2:-} serial=-1 deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        if [ "$serial" = -1 ]; then api GET "/state"; else api GET "/state?after=$serial&wait=10"; fi
        [ "$CODE" = 200 ] || fail "GET /state answered $CODE: $BODY"
        serial=$(field serial)
        if [ "$(field phase)" = "$want" ] && { [ -z "$attempt" ] || [ "$(field attempt)" = "$attempt" ]; }; then
            return 0
        fi
    done
    fail "node never reached phase $want${attempt:+ (attempt $attempt)}; last state $BODY; stderr: $(cat "$DIR/stderr")"
}

# wait_exit PID -> $EXIT its exit status (fails after 30 s).
wait_exit() {
    local i
    for i in $(seq 1 600); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$1" 2>/dev/null && fail "agent $1 did not exit"
    wait "$1"
    EXIT=$?
}

wait_file() {   # FILE: waits up to 30 s for it
    local i
    for i in $(seq 1 600); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    fail "$1 never appeared"
}

now_ms() { date +%s%3N; }

SETUP='echo "setup says hi attempt=$JGSCHED_ATTEMPT"; echo "$JGSCHED_ATTEMPT" >>"$TMPDIR/setup_ran"'
# run records when it started, whether attempt 1's file is still in TMPDIR,
# then waits for $TMPDIR/go and exits with the code written there.
RUN='echo $$ >"$PIDS/run.$JGSCHED_ATTEMPT"
date +%s%3N >"$TMPDIR/run_started.$JGSCHED_ATTEMPT"
echo "run attempt=$JGSCHED_ATTEMPT task=$SKYPILOT_TASK_ID"
printf "ips=%s|\n" "$SKYPILOT_NODE_IPS"
[ -f "$TMPDIR/keep" ] && echo "kept from an earlier attempt"
[ -n "${JGSCHED_AGENT_TOKEN_FILE:-}" ] && echo "agent settings leaked"
touch "$TMPDIR/keep"
while [ ! -s "$TMPDIR/go" ]; do sleep 0.02; done
exit "$(cat "$TMPDIR/go")"'

# ---- authentication
start_agent main "$SETUP" "$RUN"
MAIN_PID=$APID
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/state")
assert_eq "$code" 401 "GET /state without a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN%?}x" "http://127.0.0.1:$PORT/state")
assert_eq "$code" 401 "GET /state with a wrong token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${TOKEN}x" "http://127.0.0.1:$PORT/state")
assert_eq "$code" 401 "GET /state with the token and one byte more"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/release")
assert_eq "$code" 401 "POST /release without a token"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Jgsched-Token: $TOKEN" "http://127.0.0.1:$PORT/state")
assert_eq "$code" 200 "GET /state with X-Jgsched-Token"
ok "requests without the right token are refused with 401 (and /release did nothing)"

# ---- setup, then the barrier
wait_phase waiting 1
assert_eq "$(cat "$DIR/tmp/setup_ran")" 1 "setup ran once"
grep -q "setup says hi attempt=1" "$DIR/stdout" || fail "setup's output is not on the agent's stdout: $(cat "$DIR/stdout")"
assert_eq "$(field released)" false "released before /release"
ok "setup ran with /bin/sh -c, its output on the agent's stdout; node waits at the barrier"

# Nothing but /release lets run start: the state does not move for 1 s.
serial=$(field serial)
api GET "/state?after=$serial&wait=1"
assert_eq "$(field phase)" waiting "phase a second later"
[ -e "$DIR/tmp/run_started.1" ] && fail "run started before /release"
ok "run does not start before /release"

# ---- request limits
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    -H "Content-Length: 10000000" "http://127.0.0.1:$PORT/hosts")
assert_eq "$code" 413 "a 10 MB body announced"
long=$(head -c 9000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" -H "X-Pad: $long" \
    "http://127.0.0.1:$PORT/state")
assert_eq "$code" 431 "a 9000-byte header"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/state?wait=99999")
assert_eq "$code" 400 "a wait beyond 60 s"
kill -0 "$MAIN_PID" || fail "the agent died of an oversized request"
# 80 connections that send nothing (more than the agent's 64 slots) must not
# lock the daemon out: the idlest make room for a real request.
python3 - "$PORT" "$TOKEN" <<'PY' || fail "a request behind 80 idle connections was not answered"
import socket, sys
port, token = int(sys.argv[1]), sys.argv[2]
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(("GET /state HTTP/1.1\r\nHost: x\r\nX-Jgsched-Token: %s\r\n\r\n" % token).encode())
answer = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    answer += chunk
sys.exit(0 if answer.startswith(b"HTTP/1.1 200") else 1)
PY
ok "oversized requests are refused (413, 431, 400), idle connections cannot lock it out, the agent lives on"

# ---- /etc/hosts
HOSTS1=$'10.1.0.5 server-0.grp server-0\n10.1.0.6 client-0.grp client-0'
api POST /hosts --data-binary "$HOSTS1"
assert_eq "$CODE" 200 "POST /hosts: $BODY"
grep -qx "10.1.0.5 server-0.grp server-0" "$DIR/hosts" || fail "hosts line missing: $(cat "$DIR/hosts")"
grep -qx "127.0.0.1 localhost" "$DIR/hosts" || fail "kubelet's own lines were lost: $(cat "$DIR/hosts")"
cp "$DIR/hosts" "$WORK/hosts.first"
api POST /hosts --data-binary "$HOSTS1"
cmp -s "$DIR/hosts" "$WORK/hosts.first" || fail "a second identical POST /hosts changed the file: $(cat "$DIR/hosts")"
api POST /hosts --data-binary $'10.1.0.9 server-0.grp server-0\n10.1.0.6 client-0.grp client-0'
grep -q "10.1.0.5" "$DIR/hosts" && fail "a replaced pod's old address stayed: $(cat "$DIR/hosts")"
grep -qx "10.1.0.9 server-0.grp server-0" "$DIR/hosts" || fail "new address missing: $(cat "$DIR/hosts")"
cp "$DIR/hosts" "$WORK/hosts.second"
api POST /hosts --data-binary $'10.1.0.7 evil.grp\n127.0.0.1 bad\x01name'
assert_eq "$CODE" 400 "hosts with a control character"
api POST /hosts --data-binary $'not-an-ip name'
assert_eq "$CODE" 400 "hosts line without an IP"
cmp -s "$DIR/hosts" "$WORK/hosts.second" || fail "a refused POST /hosts changed the file"
ok "POST /hosts replaces the agent's block idempotently, keeps other lines, refuses bad lines"

# ---- /env: the pods' IPs, known only once every pod runs, reach run
api POST "/env?name=SKYPILOT_NODE_IPS" --data-binary $'10.1.0.9\n10.1.0.6'
assert_eq "$CODE" 200 "POST /env: $BODY"
api POST "/env?name=JGSCHED_ATTEMPT" --data-binary 9
assert_eq "$CODE" 400 "POST /env of the agent's own variable"
api POST "/env?name=BAD-NAME" --data-binary x
assert_eq "$CODE" 400 "POST /env with a bad name"

# ---- release: run starts within 1 s
t0=$(now_ms)
api POST /release
assert_eq "$CODE" 200 "POST /release"
wait_file "$DIR/tmp/run_started.1"
t1=$(cat "$DIR/tmp/run_started.1")
[ $((t1 - t0)) -le 1000 ] || fail "run started $((t1 - t0)) ms after /release"
wait_phase running 1
api POST /release
assert_eq "$CODE" 200 "a second POST /release"
ok "run started $((t1 - t0)) ms after /release; a second /release is harmless"
grep -q "agent settings leaked" "$DIR/stdout" && fail "JGSCHED_AGENT_* reached the job's environment"
grep -qx "run attempt=1 task=jgsched-2026_g_main_7-0" "$DIR/stdout" || fail "run's output: $(cat "$DIR/stdout")"
{ grep -q "^10.1.0.6|" "$DIR/stdout" && grep -q "^ips=10.1.0.9\$" "$DIR/stdout"; } ||
    fail "SKYPILOT_NODE_IPS set through /env did not reach run: $(cat "$DIR/stdout")"
ok "the job's environment has JGSCHED_ATTEMPT=1, SKYPILOT_NODE_IPS from /env, no JGSCHED_AGENT_* settings"

# ---- run exits 29: the node is exited, the agent waits for the daemon's word
echo 29 >"$DIR/tmp/go"
wait_phase exited 1
assert_eq "$(field exit_code)" 29 "exit code of attempt 1"
assert_eq "$(field in_setup)" false "in_setup"
kill -0 "$MAIN_PID" || fail "the agent exited on its own after run"
ok "run's exit code 29 is reported; the agent stays for the daemon's decision"

# ---- restart in place as attempt 2
rm -f "$DIR/tmp/go"
api POST "/restart?attempt=2"
assert_eq "$CODE" 200 "POST /restart: $BODY"
wait_phase waiting 2
assert_eq "$(tr '\n' ' ' <"$DIR/tmp/setup_ran")" "1 2 " "setup ran again for attempt 2"
api POST "/restart?attempt=1"
assert_eq "$CODE" 409 "a restart to an older attempt"
api POST /release
wait_file "$DIR/tmp/run_started.2"
wait_phase running 2
wait_file "$DIR/stdout"
for i in $(seq 1 100); do grep -q "run attempt=2" "$DIR/stdout" && break; sleep 0.05; done
grep -qx "run attempt=2 task=jgsched-2026_g_main_7-0-2" "$DIR/stdout" || fail "attempt 2's task id: $(cat "$DIR/stdout")"
grep -q "kept from an earlier attempt" "$DIR/stdout" || fail "TMPDIR was not kept across the restart: $(cat "$DIR/stdout")"
ok "restart in place: setup and run again as attempt 2, TMPDIR kept, JGSCHED_ATTEMPT and SKYPILOT_TASK_ID updated"

# ---- restart of a running node kills it first
api POST "/restart?attempt=3&grace_ms=2000"
assert_eq "$CODE" 200 "restart of a running node"
wait_phase waiting 3
kill -0 "$(cat "$DIR/pids/run.2")" 2>/dev/null && fail "attempt 2's run survived the restart"
ok "a restart stops the running attempt before the new setup"

# ---- /kill keeps the agent; /finish exits with the code
api POST /release
wait_phase running 3
api POST "/kill?grace_ms=2000"
wait_phase exited 3
assert_eq "$(field signal)" 15 "signal of a killed run"
assert_eq "$(field exit_code)" 143 "exit code of a killed run"
kill -0 "$MAIN_PID" || fail "/kill ended the agent"
api POST "/finish?code=3"
assert_eq "$CODE" 202 "POST /finish"
wait_exit "$MAIN_PID"
assert_eq "$EXIT" 3 "agent exit status after /finish?code=3"
ok "/kill ends the run (143) but not the agent; /finish?code=3 exits 3"

# ---- /stop with grace: a run that ignores TERM is killed after the grace
IGNORE_TERM='echo $$ >"$PIDS/stubborn"; trap "" TERM; while :; do sleep 0.1; done'
start_agent stop "" "$IGNORE_TERM"
api POST /release
wait_phase running
wait_file "$DIR/pids/stubborn"
t0=$(now_ms)
api POST "/stop?grace_ms=700"
assert_eq "$CODE" 202 "POST /stop"
wait_exit "$APID"
t1=$(now_ms)
assert_eq "$EXIT" 137 "exit status of a stop that needed KILL"
[ $((t1 - t0)) -ge 650 ] || fail "stop killed after $((t1 - t0)) ms, before the 700 ms grace"
kill -0 "$(cat "$DIR/pids/stubborn")" 2>/dev/null && fail "the stubborn run outlived the agent"
ok "/stop?grace_ms=700: TERM ignored, KILL after $((t1 - t0)) ms, agent exits 137, nothing left"

# ---- SIGTERM (the kubelet) stops the node and exits 143
POLITE='echo $$ >"$PIDS/polite"; trap "echo got TERM; exit 0" TERM; while :; do sleep 0.1; done'
start_agent sigterm "" "$POLITE" 20000
api POST /release
wait_phase running
wait_file "$DIR/pids/polite"
t0=$(now_ms)
kill -TERM "$APID"
wait_exit "$APID"
t1=$(now_ms)
assert_eq "$EXIT" 143 "exit status after SIGTERM"
[ $((t1 - t0)) -lt 10000 ] || fail "a run that exits on TERM took $((t1 - t0)) ms to stop"
grep -q "got TERM" "$DIR/stdout" || fail "the run did not see TERM: $(cat "$DIR/stdout")"
kill -0 "$(cat "$DIR/pids/polite")" 2>/dev/null && fail "the run outlived the agent"
ok "SIGTERM: the run gets TERM, the agent exits 143"

# ---- a node that ended waits idle; the kubelet's TERM then ends the
# container with the node's own code (its terminated state tells it), and
# run is a bash script where bash exists (brace expansion, as on local)
start_agent idleterm "" 'for i in {1..3}; do echo "it $i"; done; exit 5'
api POST /release
wait_phase exited
assert_eq "$(field exit_code)" 5 "exit code of the run"
grep -qx "it 3" "$DIR/stdout" || fail "{1..3} was not expanded: $(cat "$DIR/stdout")"
kill -TERM "$APID"
wait_exit "$APID"
assert_eq "$EXIT" 5 "exit status of an idle agent after SIGTERM"
ok "run under bash; SIGTERM after the node ended exits with the node's code (5), not 143"

# ---- a failing setup, and a node without run
start_agent failsetup 'echo broken; exit 4' "$RUN"
wait_phase exited
assert_eq "$(field in_setup)" true "in_setup of a failed setup"
assert_eq "$(field exit_code)" 4 "exit code of a failed setup"
api POST "/finish?code=4"
wait_exit "$APID"
assert_eq "$EXIT" 4 "agent exit after a failed setup"
start_agent norun "" ""
wait_phase waiting
api POST /release
wait_phase exited
assert_eq "$(field exit_code)" 0 "a node without run"
api POST "/finish?code=0"
wait_exit "$APID"
assert_eq "$EXIT" 0 "agent exit of a node without run"
ok "a failing setup is reported in_setup with its code; a node without run succeeds at once"

# ---- no token file: the agent refuses to start
DIR="$WORK/notoken"
mkdir -p "$DIR"
JGSCHED_AGENT_PORT=$(free_port) JGSCHED_AGENT_ADDRESS=127.0.0.1 JGSCHED_AGENT_TOKEN_FILE="$DIR/none" \
    "$JGSCHED_AGENT" >/dev/null 2>"$DIR/stderr"
assert_eq "$?" 125 "exit status without a token file"
grep -q "no token file" "$DIR/stderr" || fail "message without a token file: $(cat "$DIR/stderr")"
ok "without a token file the agent does not start (125, says why)"

# ---- install: copies itself
mkdir -p "$WORK/install"
"$JGSCHED_AGENT" install "$WORK/install" || fail "install failed"
cmp -s "$JGSCHED_AGENT" "$WORK/install/jgsched-agent" || fail "installed copy differs"
[ -x "$WORK/install/jgsched-agent" ] || fail "installed copy is not executable"
ok "install DIR copies the agent into DIR, executable"

jg_done
