# lib.sh - shared helpers of the integration tests (sourced, not run).
#
# Every integration test starts its own throwaway jgsched instance: jg_setup
# makes JGSCHED_HOME=$(mktemp -d /tmp/jgtest.XXXXXX), starts jgschedd there and
# installs jg_teardown on EXIT, which cancels every group, stops the daemon,
# kills whatever is left and removes the directories.  Tests then speak to the
# daemon only through the CLI, as a user would.
#
# Conventions:
#   - jgc ARGS...   runs the CLI and captures stdout in $OUT, stderr in $ERR and
#                   the exit status in $RC; `fail` prints them, so every failure
#                   shows what the CLI said.
#   - ok NAME       records a passed check ("ok - NAME"); fail MSG stops the test
#                   ("not ok - MSG") with exit 1.  jg_done prints the summary.
#   - scratch files (YAMLs written by a test, files written by nodes) go to
#                   $JG_WORK, a second temporary directory, so that nothing the
#                   test itself runs mentions $JGSCHED_HOME on its command line;
#                   under /var/tmp, since a node does not see the host's /tmp.
#
# Environment: JGSCHED, JGSCHEDD, JGSCHED_SHIM (absolute paths of the built
# binaries), JG_SOURCE_ROOT (the repository root).  JG_KEEP=1 keeps the
# temporary directories of a failed test for inspection.  JG_DAEMON_ARGS adds
# arguments to the jgschedd that jg_setup starts (e.g. --system), JG_DAEMON_WRAP
# a command it runs under (e.g. nsenter --net=...).
#
# Tests of a shared `jgschedd --system` (multiuser.sh, security_*.sh) start
# with jg_need_root_and_tools, make their users with jg_throwaway_user (and
# jg_throwaway_group), which jg_teardown deletes on any exit, and run the CLI
# as one of them with jg_as.  A test's own cleanup goes in jg_extra_teardown
# (run first, while the daemon still runs) or jg_final_teardown (run last,
# once the daemon and the users' processes are gone).

# Variables set here are read by the tests that source this file; jq filters
# are single-quoted on purpose.
# shellcheck disable=SC2034,SC2016
set -u
set -o pipefail

: "${JG_SOURCE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export JG_SOURCE_ROOT
JG_SEED="$JG_SOURCE_ROOT/tests/fixtures/seed"
JG_EXAMPLES="$JG_SOURCE_ROOT/examples"

# Seconds any single CLI call may take before the test calls it hung.
JG_CMD_TIMEOUT=${JG_CMD_TIMEOUT:-120}

JG_PASSED=0
JG_HOME_CREATED=""
JG_WORK=""
JG_DAEMON_PID=""
JG_THROWAWAY_USERS=()
JG_THROWAWAY_GROUPS=()
LAST_CMD=""
OUT=""
ERR=""
RC=0
SHOW=""

# ---------------------------------------------------------------- reporting

ok() {
    JG_PASSED=$((JG_PASSED + 1))
    echo "ok - $*"
}

# Prints the last CLI call (command, status, stdout, stderr) to stderr.
jg_dump_last() {
    [ -n "$LAST_CMD" ] || return 0
    {
        echo "--- last command: $LAST_CMD (exit $RC)"
        echo "--- stdout:"
        printf '%s\n' "$OUT"
        echo "--- stderr:"
        printf '%s\n' "$ERR"
        echo "---"
    } >&2
}

fail() {
    echo "not ok - $*" >&2
    jg_dump_last
    echo "$JG_PASSED passed, 1 failed" >&2
    exit 1
}

# fail_group ID MSG: fails, after printing what the daemon knows of the group
# (show, show --json, logs) so the reason is visible in the test output.
fail_group() {
    local id=$1
    shift
    echo "not ok - $*" >&2
    jg_dump_last
    {
        echo "=== jgsched show $id"
        timeout 10 "$JGSCHED" show "$id" 2>&1
        echo "=== jgsched show $id --json"
        timeout 10 "$JGSCHED" show "$id" --json 2>&1
        echo "=== jgsched logs $id"
        timeout 10 "$JGSCHED" logs "$id" 2>&1 | tail -n 60
        echo "==="
    } >&2
    echo "$JG_PASSED passed, 1 failed" >&2
    exit 1
}

jg_done() {
    echo "$JG_PASSED passed, 0 failed"
}

# ---------------------------------------------------------------- assertions

assert_eq() {   # ACTUAL EXPECTED [WHAT]
    [ "$1" = "$2" ] || fail "${3:-value}: expected '$2', got '$1'"
}

assert_ne() {   # ACTUAL UNEXPECTED [WHAT]
    [ "$1" != "$2" ] || fail "${3:-value}: expected anything but '$2'"
}

assert_contains() {     # HAYSTACK NEEDLE [WHAT]
    case "$1" in
        *"$2"*) ;;
        *) fail "${3:-output} does not contain '$2'" ;;
    esac
}

assert_not_contains() { # HAYSTACK NEEDLE [WHAT]
    case "$1" in
        *"$2"*) fail "${3:-output} contains '$2' but should not" ;;
        *) ;;
    esac
}

assert_match() {        # STRING ERE [WHAT]
    [[ $1 =~ $2 ]] || fail "${3:-value} '$1' does not match /$2/"
}

# Case-insensitive substring test of $1 for $2 (exit status only).
contains_ci() {
    local h n
    h=$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')
    n=$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')
    case "$h" in *"$n"*) return 0 ;; *) return 1 ;; esac
}

# Float comparison: fle A B is true when A <= B.
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }
# fsub A B prints A - B.
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", a - b }'; }
# fabs_le A B LIMIT: true when |A - B| <= LIMIT.
fabs_le() {
    awk -v a="$1" -v b="$2" -v l="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= l) }'
}

# ---------------------------------------------------------------- running the CLI

jg() {
    "$JGSCHED" "$@"
}

# jgc ARGS...: runs the CLI with a timeout; sets OUT, ERR, RC, LAST_CMD.
jgc() {
    local o e
    o=$(mktemp "$JG_WORK/out.XXXXXX")
    e=$(mktemp "$JG_WORK/err.XXXXXX")
    LAST_CMD="jgsched $*"
    timeout -k 5 "$JG_CMD_TIMEOUT" "$JGSCHED" "$@" >"$o" 2>"$e" </dev/null
    RC=$?
    OUT=$(cat "$o")
    ERR=$(cat "$e")
    rm -f "$o" "$e"
    if [ "$RC" -eq 124 ] || [ "$RC" -eq 137 ]; then
        fail "'$LAST_CMD' did not finish within ${JG_CMD_TIMEOUT}s"
    fi
    return 0
}

# jgc_ok ARGS...: jgc, and the command must exit 0.
jgc_ok() {
    jgc "$@"
    [ "$RC" -eq 0 ] || fail "'jgsched $*' exited $RC"
}

# submit_follow FILE [OPTIONS...]: `jgsched submit FILE --infra local OPTIONS`
# in the foreground (it follows the group until it ends).  Sets GID from the
# first stdout line "Submitted group ID (NAME)" and leaves RC as the exit status.
submit_follow() {
    local file=$1 first
    shift
    jgc submit "$file" --infra local "$@"
    first=$(printf '%s\n' "$OUT" | head -n 1)
    if [[ $first =~ ^Submitted\ group\ ([0-9]+)\ \((.*)\)$ ]]; then
        GID=${BASH_REMATCH[1]}
        GNAME=${BASH_REMATCH[2]}
    else
        fail "first line of submit output is not 'Submitted group ID (NAME)': '$first'"
    fi
}

# submit_detached FILE [OPTIONS...]: `jgsched submit FILE --infra local OPTIONS -d`;
# it must print only the numeric id, which is left in GID.
submit_detached() {
    local file=$1
    shift
    jgc submit "$file" --infra local "$@" -d
    [ "$RC" -eq 0 ] || fail "submit -d of $file exited $RC"
    [[ $OUT =~ ^[0-9]+$ ]] || fail "submit -d printed '$OUT', expected only a numeric id"
    GID=$OUT
}

# ---------------------------------------------------------------- reading state

# A jq prelude that accepts both {"group": {...}} and a bare group object, and
# finds events of a job whichever way the subject is spelled ("job NAME",
# "job:NAME", "NAME") and of its nodes ("node NAME-R").
JQ_DEFS='
def grp: (.group // .);
def is_job($n): (tostring) as $s | ($s == $n or $s == ("job " + $n) or $s == ("job:" + $n));
def is_node($n): (tostring) | test("^(node[ :])?" + $n + "-[0-9]+$");
def job_events($n; $w): [grp.events[]? | select(.what == $w) | select(.subject | is_job($n))];
def node_events($n; $w): [grp.events[]? | select(.what == $w) | select(.subject | is_node($n))];
'

# show_json ID: fetches `jgsched show ID --json` into SHOW (must be valid JSON).
show_json() {
    jgc show "$1" --json
    [ "$RC" -eq 0 ] || fail "show $1 --json exited $RC"
    printf '%s' "$OUT" | jq -e . >/dev/null 2>&1 || fail "show $1 --json is not valid JSON"
    SHOW=$OUT
}

# sq FILTER [jq args...]: runs a jq filter (with the prelude) on $SHOW, raw output.
sq() {
    local f=$1
    shift
    printf '%s' "$SHOW" | jq -r "$@" "$JQ_DEFS $f"
}

group_state() {     # ID -> state or "" (never fails)
    timeout 30 "$JGSCHED" show "$1" --json 2>/dev/null | jq -r '(.group // .).state // empty' 2>/dev/null
}

job_state() {       # ID JOB -> state or ""
    timeout 30 "$JGSCHED" show "$1" --json 2>/dev/null |
        jq -r --arg j "$2" '(.group // .).jobs[]? | select(.name == $j) | .state' 2>/dev/null
}

# job_field JOB FIELD: a field of one job in $SHOW.
job_field() {
    sq 'grp.jobs[] | select(.name == $j) | .[$f] | tostring' --arg j "$1" --arg f "$2"
}

# ev_first JOB WHAT / ev_last JOB WHAT: timestamp of the first / last event WHAT
# of a job in $SHOW (falling back to its nodes' events); empty if none.
ev_first() {
    sq '(job_events($j; $w) | map(.ts) | min) // (node_events($j; $w) | map(.ts) | min) // empty' \
        --arg j "$1" --arg w "$2"
}
ev_last() {
    sq '(job_events($j; $w) | map(.ts) | max) // (node_events($j; $w) | map(.ts) | max) // empty' \
        --arg j "$1" --arg w "$2"
}

is_terminal() {
    case "$1" in
        SUCCEEDED | FAILED | CANCELLED | FAILED_*) return 0 ;;
        *) return 1 ;;
    esac
}

# state_in STATE "A|B|C"
state_in() {
    local IFS='|' s
    for s in $2; do
        [ "$1" = "$s" ] && return 0
    done
    return 1
}

# wait_state ID STATES TIMEOUT_S: waits until the group is in one of STATES
# ("A|B"); fails at once if it ends in another state, or after the timeout.
wait_state() {
    local id=$1 want=$2 limit=$3 st="" i
    for ((i = 0; i < limit * 5; i++)); do
        st=$(group_state "$id")
        state_in "$st" "$want" && return 0
        if is_terminal "$st"; then
            fail_group "$id" "group $id ended $st while waiting for $want"
        fi
        sleep 0.2
    done
    fail_group "$id" "group $id is '$st' after ${limit}s, expected $want"
}

# wait_end ID TIMEOUT_S: waits until the group is terminal; sets END_STATE.
wait_end() {
    local id=$1 limit=$2 st="" i
    for ((i = 0; i < limit * 5; i++)); do
        st=$(group_state "$id")
        if is_terminal "$st"; then
            END_STATE=$st
            return 0
        fi
        sleep 0.2
    done
    fail_group "$id" "group $id is '$st' after ${limit}s, expected it to have ended"
}

# wait_job_state ID JOB STATES TIMEOUT_S
wait_job_state() {
    local id=$1 job=$2 want=$3 limit=$4 st="" i
    for ((i = 0; i < limit * 5; i++)); do
        st=$(job_state "$id" "$job")
        state_in "$st" "$want" && return 0
        sleep 0.2
    done
    fail_group "$id" "job $job of group $id is '$st' after ${limit}s, expected $want"
}

# wait_log ID NEEDLE TIMEOUT_S: waits until `jgsched logs ID` contains NEEDLE.
wait_log() {
    local id=$1 needle=$2 limit=$3 i
    for ((i = 0; i < limit * 5; i++)); do
        case "$(timeout 10 "$JGSCHED" logs "$id" 2>/dev/null)" in
            *"$needle"*) return 0 ;;
        esac
        sleep 0.2
    done
    fail_group "$id" "logs of group $id do not show '$needle' after ${limit}s"
}

# queue_json: `jgsched queue --json` normalised to an array of groups (stdout).
queue_json() {
    timeout 30 "$JGSCHED" queue --json 2>/dev/null |
        jq -c 'if type == "array" then . else (.groups // []) end'
}

# ---------------------------------------------------------------- fixtures

# fast_copy SRC DST: copies a YAML, dividing every `sleep N` by 5 (at least 1),
# so the seed plan's files run quickly with their relative timing kept.
fast_copy() {
    awk '{
        out = ""; s = $0
        while (match(s, /sleep[ \t]+[0-9]+/)) {
            tok = substr(s, RSTART, RLENGTH)
            n = tok; sub(/^sleep[ \t]+/, "", n)
            q = int(n / 5); if (q < 1) q = 1
            out = out substr(s, 1, RSTART - 1) "sleep " q
            s = substr(s, RSTART + RLENGTH)
        }
        print out s
    }' "$1" >"$2" || fail "fast_copy $1 $2"
}

# ---------------------------------------------------------------- processes

# Pids (one a line) whose environment holds every VAR=VALUE given, except the
# caller's shell.  Nodes always carry SKYPILOT_JOBGROUP_NAME and JGSCHED_GROUP_ID,
# so this finds a group's processes whatever their command line.
pids_with_env() {
    local files f
    files=$(ls -d /proc/[0-9]*/environ 2>/dev/null)
    for f in "$@"; do
        [ -n "$files" ] || break
        # shellcheck disable=SC2086
        files=$(grep -lzxF -- "$f" $files 2>/dev/null)
    done
    for f in $files; do
        f=${f#/proc/}
        f=${f%/environ}
        [ "$f" = "$$" ] || [ "$f" = "${BASHPID:-}" ] || echo "$f"
    done
}

# Pids whose command line mentions $JGSCHED_HOME, except the daemon.
pids_mentioning_home() {
    local p
    for p in $(pgrep -f -- "$(jg_regex_escape "$JGSCHED_HOME")" 2>/dev/null); do
        [ "$p" = "$JG_DAEMON_PID" ] || [ "$p" = "$$" ] || echo "$p"
    done
}

jg_regex_escape() {
    printf '%s' "$1" | sed 's/[].[\*^$+?(){}|]/\\&/g'
}

# Describes pids for a failure message.
describe_pids() {
    local p
    for p in "$@"; do
        printf '  %s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
    done
}

# assert_no_leftovers [GROUP_NAME GROUP_ID]...: nothing of this instance runs
# but the daemon: no process whose command line mentions $JGSCHED_HOME and,
# for each group given, no process carrying that group's environment.  Allows
# 3 s for killed processes to be reaped.
assert_no_leftovers() {
    local left i args
    for ((i = 0; i < 15; i++)); do
        left=$(pids_mentioning_home)
        args=("$@")
        while [ ${#args[@]} -ge 2 ]; do
            left="$left $(pids_with_env "SKYPILOT_JOBGROUP_NAME=${args[0]}" "JGSCHED_GROUP_ID=${args[1]}")"
            args=("${args[@]:2}")
        done
        # shellcheck disable=SC2086,SC2116
        left=$(echo $left)     # squeeze
        [ -z "$left" ] && return 0
        sleep 0.2
    done
    # shellcheck disable=SC2086
    fail "processes left behind: $(describe_pids $left)"
}

# ---------------------------------------------------------------- throwaway users

# jg_need_root_and_tools TOOL...: a test that creates users skips (exit 77)
# unless run as root, and fails unless useradd, userdel, runuser and every
# TOOL are installed.
jg_need_root_and_tools() {
    local tool
    if [ "$(id -u)" -ne 0 ]; then
        echo "# skip: ${0##*/} creates users and needs root"
        exit 77
    fi
    for tool in useradd userdel runuser "$@"; do
        command -v "$tool" >/dev/null || { echo "not ok - $tool is needed" >&2; exit 1; }
    done
}

# jg_install_teardown: jg_teardown on any exit, INT and TERM included.  Done
# before the first user is made, so that none outlives a failed setup.
jg_install_teardown() {
    trap jg_teardown EXIT
    trap 'exit 130' INT TERM
}

# jg_throwaway_user NAME [USERADD_OPTION...]: creates an unprivileged user
# (shell nologin, no home unless the options hold -m) that jg_teardown deletes
# after killing all its processes; fails the test if useradd does.
jg_throwaway_user() {
    local name=$1 home=-M opt
    shift
    for opt in "$@"; do
        case $opt in -m | --create-home) home="" ;; esac
    done
    jg_install_teardown
    useradd ${home:+"$home"} -s /usr/sbin/nologin "$@" "$name" || fail "useradd $name"
    JG_THROWAWAY_USERS+=("$name")
}

# jg_throwaway_group NAME: creates a group that jg_teardown deletes.
jg_throwaway_group() {
    jg_install_teardown
    groupadd "$1" || fail "groupadd $1"
    JG_THROWAWAY_GROUPS+=("$1")
}

# jg_kill_throwaway_processes: kill -9 to everything the throwaway users run.
# jg_teardown does it after stopping the daemon; a test whose users may hold
# the daemon up (connection floods) calls it from jg_extra_teardown too.
jg_kill_throwaway_processes() {
    local u p
    for u in "${JG_THROWAWAY_USERS[@]}"; do
        for p in $(pgrep -u "$u" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
}

# Kills the throwaway users' processes and deletes the users and groups.
# userdel refuses a user whose killed processes are not reaped yet: retried.
jg_remove_throwaway_accounts() {
    local u g
    jg_kill_throwaway_processes
    for u in "${JG_THROWAWAY_USERS[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            userdel "$u" >/dev/null 2>&1 && break
            id "$u" >/dev/null 2>&1 || break
            sleep 0.3
        done
        id "$u" >/dev/null 2>&1 && echo "# teardown: could not delete user $u" >&2
    done
    for g in "${JG_THROWAWAY_GROUPS[@]}"; do
        groupdel "$g" >/dev/null 2>&1
    done
    JG_THROWAWAY_USERS=()
    JG_THROWAWAY_GROUPS=()
}

# jg_as USER ARGS...: the CLI run as USER (runuser) from $JG_WORK, with none
# of the test's jgsched variables but JGSCHED_SOCKET; sets OUT, ERR, RC,
# LAST_CMD and TOOK (seconds it took).  Read at each call, so a test may set
# them for the whole script or for one call (JG_AS_TIMEOUT=5 jg_as ...):
#   JG_AS_SOCKET       the socket (default: this instance's)
#   JG_AS_TIMEOUT      seconds before the command is killed (default 60); the
#                      test then fails, unless JG_AS_MAY_TIME_OUT=1 leaves RC
#                      124 or 137 for the caller to judge.
jg_as() {
    local user=$1 sock=${JG_AS_SOCKET:-$JGSCHED_HOME/jgsched.sock} limit=${JG_AS_TIMEOUT:-60} o e t0
    shift
    o=$(mktemp "$JG_WORK/out.XXXXXX")
    e=$(mktemp "$JG_WORK/err.XXXXXX")
    LAST_CMD="(as $user) jgsched $*"
    t0=$(date +%s.%N)
    (cd "$JG_WORK" && timeout -k 5 "$limit" runuser -u "$user" -- env -u JGSCHED_HOME -u JGSCHEDD \
        JGSCHED_SOCKET="$sock" "$JGSCHED" "$@") >"$o" 2>"$e" </dev/null
    RC=$?
    TOOK=$(fsub "$(date +%s.%N)" "$t0")
    OUT=$(cat "$o")
    ERR=$(cat "$e")
    rm -f "$o" "$e"
    if [ "${JG_AS_MAY_TIME_OUT:-0}" != 1 ]; then
        case $RC in 124 | 137) fail "'$LAST_CMD' did not finish within $limit s" ;; esac
    fi
    return 0
}

# jg_as_ok USER ARGS...: jg_as, and the command must exit 0.
jg_as_ok() {
    jg_as "$@"
    [ "$RC" -eq 0 ] || fail "'$LAST_CMD' exited $RC"
}

# jg_as_submit USER FILE [OPTIONS...]: `submit FILE --infra local -d OPTIONS`
# as USER; it must print only the numeric id, which is left in GID.
jg_as_submit() {
    local user=$1 file=$2
    shift 2
    jg_as "$user" submit "$file" --infra local -d "$@"
    [ "$RC" -eq 0 ] || fail "'$LAST_CMD' exited $RC"
    [[ $OUT =~ ^[0-9]+$ ]] || fail "submit -d as $user printed '$OUT', expected a numeric id"
    GID=$OUT
}

# ---------------------------------------------------------------- setup / teardown

jg_need() {
    local v
    for v in JGSCHED JGSCHEDD; do
        [ -n "${!v:-}" ] || { echo "not ok - \$$v is not set" >&2; exit 1; }
        [ -x "${!v}" ] || { echo "not ok - \$$v=${!v} is not executable" >&2; exit 1; }
    done
    command -v jq >/dev/null || { echo "not ok - jq is needed by the integration tests" >&2; exit 1; }
}

jg_setup() {
    jg_need
    unset JGSCHED_SOCKET
    JGSCHED_HOME=$(mktemp -d /tmp/jgtest.XXXXXX) || { echo "not ok - mktemp" >&2; exit 1; }
    export JGSCHED_HOME
    JG_HOME_CREATED=$JGSCHED_HOME
    # A marker every process we start inherits: teardown kills what carries it.
    export JGSCHED_TEST_HOME=$JGSCHED_HOME
    # Not under /tmp: nodes have a /tmp of their own and would not see it.
    JG_WORK=$(mktemp -d /var/tmp/jgwork.XXXXXX) || { echo "not ok - mktemp" >&2; exit 1; }
    chmod 755 "$JG_WORK"
    jg_install_teardown

    # The seed plan's groups ask for more CPUs and memory than a CI machine has
    # (the RL architecture: 26 cpus, 56 GB): declare a larger local capacity on
    # purpose, as the seed plan's users would on a shared test box.  NAT is off:
    # as root it would turn on forwarding and add nftables rules in this host's
    # network namespace (nat.sh tests it in namespaces of its own).  A test may
    # write its own config.yaml before jg_setup by setting JG_CONFIG (with
    # `nat: false` unless its daemon runs in a network namespace of its own).
    if [ -n "${JG_CONFIG:-}" ]; then
        printf '%s\n' "$JG_CONFIG" >"$JGSCHED_HOME/config.yaml"
    else
        cat >"$JGSCHED_HOME/config.yaml" <<'CFG'
backends:
  local:
    capacity: {cpus: 64, memory: 256GB}
    nat: false
CFG
    fi

    # The daemon daemonizes and exits 0 once ready: never capture its output
    # with $(...) (a daemon holding the pipe would hang the test).
    # JG_DAEMON_ARGS (optional, word-split): extra daemon arguments, e.g. --system.
    # shellcheck disable=SC2086
    # JG_DAEMON_WRAP (optional, word-split): a command the daemon runs under,
    # e.g. `nsenter --net=/run/netns/X` to give it a network namespace.
    timeout -k 5 30 ${JG_DAEMON_WRAP:-} "$JGSCHEDD" ${JG_DAEMON_ARGS:-} >"$JG_WORK/jgschedd.start" 2>&1
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$JG_WORK/jgschedd.start" >&2
        fail "jgschedd exited $rc at start"
    fi
    local i
    for ((i = 0; i < 25; i++)); do
        [ -s "$JGSCHED_HOME/jgschedd.pid" ] && break
        sleep 0.2
    done
    [ -s "$JGSCHED_HOME/jgschedd.pid" ] || fail "no pid file $JGSCHED_HOME/jgschedd.pid after start"
    JG_DAEMON_PID=$(tr -dc '0-9' <"$JGSCHED_HOME/jgschedd.pid")
    kill -0 "$JG_DAEMON_PID" 2>/dev/null || fail "daemon pid $JG_DAEMON_PID is not alive"
    jgc queue --json
    [ "$RC" -eq 0 ] || fail "the daemon does not answer 'queue' after start"
}

jg_teardown() {
    local rc=$? p
    set +e
    trap - EXIT
    # A test's own resources (namespaces, servers) go first: jg_extra_teardown.
    if declare -F jg_extra_teardown >/dev/null; then jg_extra_teardown; fi
    # Our own background commands (followers, logs -f); disowned, so that the
    # shell does not report those the sweeps below kill -9 ("Killed ...").
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    disown -a
    [ -z "$JG_HOME_CREATED" ] || jg_teardown_instance "$rc"
    jg_remove_throwaway_accounts
    # What must outlive the daemon and the users' processes: jg_final_teardown.
    if declare -F jg_final_teardown >/dev/null; then jg_final_teardown; fi
    exit "$rc"
}

# jg_teardown_instance RC: cancels every group, stops the daemon, kills what
# is left of the instance and removes its directories (kept when RC is not 0
# and JG_KEEP=1).
jg_teardown_instance() {
    local rc=$1 i active pids p
    if [ -S "$JGSCHED_HOME/jgsched.sock" ] || [ -n "$JG_DAEMON_PID" ]; then
        timeout 10 "$JGSCHED" cancel -a >/dev/null 2>&1
        for ((i = 0; i < 50; i++)); do
            active=$(queue_json | jq '[.[] | select(.state as $s |
                ["SUCCEEDED","FAILED","CANCELLED"] | index($s) | not) |
                select(.state | startswith("FAILED_") | not)] | length' 2>/dev/null)
            [ "${active:-0}" = 0 ] && break
            sleep 0.2
        done
        [ "${active:-0}" = 0 ] || echo "# teardown: $active group(s) still active after cancel -a" >&2
        timeout 10 "$JGSCHED" daemon stop >/dev/null 2>&1
        for ((i = 0; i < 25; i++)); do
            { [ -z "$JG_DAEMON_PID" ] || ! kill -0 "$JG_DAEMON_PID" 2>/dev/null; } && break
            sleep 0.2
        done
    fi

    if [ "$rc" -ne 0 ]; then
        echo "# daemon log tail ($JGSCHED_HOME/jgschedd.log):" >&2
        tail -n 80 "$JGSCHED_HOME/jgschedd.log" 2>/dev/null | sed 's/^/#   /' >&2
    fi

    # Whatever is left: anything mentioning the instance, or carrying our marker.
    pkill -9 -f -- "$(jg_regex_escape "$JGSCHED_HOME")" 2>/dev/null
    pids=$(pids_with_env "JGSCHED_TEST_HOME=$JGSCHED_HOME")
    # (This also catches the daemon if `daemon stop` failed: it carries the marker.)
    for p in $pids; do
        [ "$p" = "$$" ] || kill -9 "$p" 2>/dev/null
    done

    if [ "$rc" -ne 0 ] && [ "${JG_KEEP:-0}" = 1 ]; then
        echo "# kept $JGSCHED_HOME and $JG_WORK" >&2
    else
        rm -rf "$JGSCHED_HOME" "$JG_WORK" 2>/dev/null
        # Node directories may hold read-only files or busy mounts: retry once.
        [ -e "$JGSCHED_HOME" ] && { sleep 0.5; rm -rf "$JGSCHED_HOME" 2>/dev/null; }
    fi
}
