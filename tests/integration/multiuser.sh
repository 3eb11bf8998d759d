#!/usr/bin/env bash
# multiuser.sh - one jgschedd --system instance shared by several local users.
#
# Three throwaway users: A (with a supplementary group, and a limit of one
# running group), B, and C (listed in the config's admins).  They talk to
# root's daemon through its socket; the daemon knows them by SO_PEERCRED only.
# Checks: the shared socket and home modes; with that socket at its system path
# (in a mount namespace), a user's CLI naming no instance uses it while the user
# can still start a jgschedd of their own; everyone sees everyone's groups in
# the queue with the right USER (and -u / --me filter); A and B can neither
# cancel, read the logs of nor show each other's groups ("permission denied:
# group N belongs to USER"), while root and the admin C can; jobs run with the
# submitter's uid, gid and supplementary groups and a clean environment
# (nothing of the daemon's, e.g. FOO_DAEMON_SECRET, reaches a node); node
# directories and files belong to the user and are closed to the others; A's
# second group waits PENDING for its limit while B's group runs, and starts
# when A's first one ends.  Users, groups and their processes are removed on
# any exit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools groupadd groupdel

UA=jgtu_a_$$
UB=jgtu_b_$$
UC=jgtu_c_$$
XG=jgtg_x_$$
jg_throwaway_group "$XG"
jg_throwaway_user "$UA" -G "$XG"
jg_throwaway_user "$UB"
jg_throwaway_user "$UC"

JG_CONFIG="backends:
  local:
    capacity: {cpus: 64, memory: 256GB}
    nat: false
admins: [$UC]
limits:
  users:
    $UA: {running_groups: 1}"
JG_DAEMON_ARGS=--system
export FOO_DAEMON_SECRET=1
jg_setup
unset FOO_DAEMON_SECRET
tr '\0' '\n' <"/proc/$JG_DAEMON_PID/environ" | grep -qx FOO_DAEMON_SECRET=1 ||
    fail "the daemon's environment lacks FOO_DAEMON_SECRET=1: the clean-environment check would prove nothing"
SOCK=$JGSCHED_HOME/jgsched.sock
W=$JG_WORK
# A stop file per user: the nodes wait for them (readable by everyone in $W).
chmod 755 "$W"

# as_denied USER WHAT ID OWNER: `jgsched WHAT ID` as USER fails with the
# permission message naming the owner.
as_denied() {
    local user=$1 what=$2 id=$3 owner=$4
    jg_as "$user" "$what" "$id"
    [ "$RC" -ne 0 ] || fail "$user could '$what' group $id of $owner"
    assert_contains "$OUT$ERR" "permission denied: group $id belongs to $owner" "$what of $owner's group as $user"
}

# A group whose job prints who it runs as and its environment, leaves a file
# in its work directory, then waits for $W/stop-NAME.
ident_yaml() {
    local name=$1
    cat >"$W/$name.yaml" <<EOF
---
name: $name
placement: SAME_INFRA
execution: parallel
---
name: who
resources:
  cpus: 1
run: |
  echo "uid=\$(id -u)"
  echo "gid=\$(id -g)"
  echo "groups=\$(id -G)"
  env | sed 's/^/env:/'
  echo "private to \$(id -un)" >private.txt
  echo ready
  while [ ! -e $W/stop-$name ]; do sleep 0.2; done
  echo done
EOF
    chmod 644 "$W/$name.yaml"
}

# ---- the shared instance
# Connecting needs write permission: every user must have rw (x means nothing on a socket).
mode=$(stat -c %a "$SOCK")
[ $((8#$mode & 8#666)) -eq $((8#666)) ] || fail "mode of the --system socket is $mode, expected rw for everyone (0666)"
[ "$mode" = 666 ] || echo "# note: the --system socket is mode $mode (docs say 0666)"
mode=$(stat -c %a "$JGSCHED_HOME")
assert_eq "$mode" 711 "mode of the --system home"
jg_as_ok "$UA" daemon status
assert_contains "$OUT" "is running" "daemon status as $UA"
ok "jgschedd --system: socket 0666, home 0711, another user reaches it"

# ---- with the system socket in place, a plain user's CLI that names no instance
# uses it, and the user may still run a per-user jgschedd of their own.  In a
# mount namespace of its own, with a tmpfs on /run, the shared socket appears at
# its real path (/run/jgsched/jgsched.sock) without touching the host's /run.
mkdir -m 700 "$W/own-$UA" && chown "$UA" "$W/own-$UA"
# shellcheck disable=SC2016
unshare -m --propagation private env SOCK="$SOCK" W="$W" U="$UA" bash -c '
    mount -t tmpfs -o mode=755 jgtest /run &&
        mkdir -m 755 /run/jgsched && : >/run/jgsched/jgsched.sock &&
        mount --bind "$SOCK" /run/jgsched/jgsched.sock || exit 99
    plain() {   # the CLI or daemon as $U, with no jgsched variable but these
        timeout -k 5 30 runuser -u "$U" -- env -u JGSCHED_HOME -u JGSCHED_SOCKET -u JGSCHEDD \
            XDG_STATE_HOME="$W/own-$U/state" XDG_RUNTIME_DIR="$W/own-$U/run" "$@"
    }
    echo "--- default status"; plain "$JGSCHED" daemon status; echo "rc=$?"
    echo "--- own daemon"; plain "$JGSCHEDD"; echo "rc=$?"
    own=$W/own-$U/run/jgsched/jgsched.sock
    echo "--- own status"; plain JGSCHED_SOCKET="$own" "$JGSCHED" daemon status; echo "rc=$?"
    echo "--- own stop"; plain JGSCHED_SOCKET="$own" "$JGSCHED" daemon stop; echo "rc=$?"
' >"$W/own.out" 2>&1
RC=$?
OUT=$(cat "$W/own.out")
ERR=""
LAST_CMD="(as $UA, /run/jgsched/jgsched.sock present) jgsched daemon status; jgschedd"
[ "$RC" -ne 99 ] || fail "could not put the shared socket at /run/jgsched/jgsched.sock in a mount namespace"
section() { sed -n "/^--- $1\$/,/^rc=/p" <<<"$OUT"; }
s=$(section "default status")
assert_contains "$s" "socket:  /run/jgsched/jgsched.sock" "status as $UA with no jgsched variable"
assert_contains "$s" "home:    $JGSCHED_HOME" "status as $UA with no jgsched variable"
assert_contains "$s" "rc=0" "status as $UA with no jgsched variable"
s=$(section "own daemon")
assert_contains "$s" "rc=0" "$UA's own jgschedd while the system socket exists"
s=$(section "own status")
assert_contains "$s" "home:    $W/own-$UA/state/jgsched" "status of $UA's own daemon"
assert_contains "$(section "own stop")" "rc=0" "stop of $UA's own daemon"
ok "a plain user's CLI uses the system daemon; the user may still run a jgschedd of their own"

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
NA=ident-a-$TAG
NB=ident-b-$TAG
ident_yaml "$NA"
ident_yaml "$NB"
jg_as_submit "$UA" "$W/$NA.yaml"; GA=$GID
jg_as_submit "$UB" "$W/$NB.yaml"; GB=$GID
wait_log "$GA" "ready" 20
wait_log "$GB" "ready" 20

# ---- everybody sees everybody's groups, with the right USER
for u in "$UA" "$UB"; do
    jg_as_ok "$u" queue --json
    q=$(printf '%s' "$OUT" | jq -c 'if type == "array" then . else (.groups // []) end')
    assert_eq "$(jq -r --argjson id "$GA" '.[] | select(.id == $id) | .user' <<<"$q")" "$UA" "user of group $GA in $u's queue --json"
    assert_eq "$(jq -r --argjson id "$GB" '.[] | select(.id == $id) | .user' <<<"$q")" "$UB" "user of group $GB in $u's queue --json"
    assert_eq "$(jq -r --argjson id "$GA" '.[] | select(.id == $id) | .uid' <<<"$q")" "$(id -u "$UA")" "uid of group $GA in $u's queue --json"
    jg_as_ok "$u" queue
    hdr=$(head -n 1 <<<"$OUT")
    assert_contains "$hdr" "USER" "header of $u's queue"
    line=$(awk -v id="$GA" '$1 == id' <<<"$OUT")
    assert_contains "$line" " $UA " "queue line of group $GA as seen by $u"
    line=$(awk -v id="$GB" '$1 == id' <<<"$OUT")
    assert_contains "$line" " $UB " "queue line of group $GB as seen by $u"
done
jg_as_ok "$UA" queue --json -u "$UB"
assert_eq "$(printf '%s' "$OUT" | jq -c '[(if type == "array" then . else .groups end)[] | .user] | unique')" "[\"$UB\"]" "users in '$UA: queue -u $UB'"
jg_as_ok "$UA" queue --json --me
assert_eq "$(printf '%s' "$OUT" | jq -c '[(if type == "array" then . else .groups end)[] | .user] | unique')" "[\"$UA\"]" "users in '$UA: queue --me'"
ok "each user sees both groups in queue with the right USER; -u and --me filter"

# ---- neither may act on the other's group
as_denied "$UA" cancel "$GB" "$UB"
as_denied "$UA" logs "$GB" "$UB"
as_denied "$UA" show "$GB" "$UB"
as_denied "$UB" cancel "$GA" "$UA"
as_denied "$UB" logs "$GA" "$UA"
as_denied "$UB" show "$GA" "$UA"
assert_eq "$(group_state "$GA")" RUNNING "state of $UA's group after $UB tried to cancel it"
assert_eq "$(group_state "$GB")" RUNNING "state of $UB's group after $UA tried to cancel it"
ok "cancel, logs and show of another user's group: 'permission denied: group N belongs to USER'"

# ---- root and the configured admin may
jgc_ok show "$GB"
jgc_ok logs "$GB"
assert_contains "$OUT" "(who-0) ready" "root's view of $UB's logs"
jg_as_ok "$UC" show "$GA"
jg_as_ok "$UC" logs "$GA"
assert_contains "$OUT" "(who-0) ready" "admin $UC's view of $UA's logs"
ok "root and an admin listed in the config show and read any user's group"

# ---- jobs run as the submitter, with a clean environment
jg_as_ok "$UA" logs "$GA"
LA=$OUT
assert_eq "$(sed -n 's/^(who-0) uid=//p' <<<"$LA")" "$(id -u "$UA")" "uid of $UA's job"
assert_eq "$(sed -n 's/^(who-0) gid=//p' <<<"$LA")" "$(id -g "$UA")" "gid of $UA's job"
got=$(sed -n 's/^(who-0) groups=//p' <<<"$LA" | tr ' ' '\n' | sort -n | tr '\n' ' ')
want=$(id -G "$UA" | tr ' ' '\n' | sort -n | tr '\n' ' ')
assert_eq "$got" "$want" "supplementary groups of $UA's job (id -G)"
assert_contains " $got" " $(getent group "$XG" | cut -d: -f3) " "groups of $UA's job"
assert_contains "$LA" "(who-0) env:USER=$UA" "environment of $UA's job"
for var in FOO_DAEMON_SECRET JGSCHED_TEST_HOME JGSCHED_HOME; do
    assert_not_contains "$LA" "(who-0) env:$var=" "environment of $UA's job"
done
jg_as_ok "$UB" logs "$GB"
assert_eq "$(sed -n 's/^(who-0) uid=//p' <<<"$OUT")" "$(id -u "$UB")" "uid of $UB's job"
assert_eq "$(sed -n 's/^(who-0) gid=//p' <<<"$OUT")" "$(id -g "$UB")" "gid of $UB's job"
assert_not_contains "$OUT" "FOO_DAEMON_SECRET" "environment of $UB's job"
ok "jobs run with the submitter's uid, gid and groups; no daemon variable reaches them"

# ---- node directories belong to their user, closed to others
ND=$JGSCHED_HOME/state/groups/$GA/who-0
[ -d "$ND" ] || fail "no node directory $ND"
uid_a=$(id -u "$UA")
for f in "$ND" "$ND/output.log" "$ND/work/private.txt"; do
    [ -e "$f" ] || fail "$f does not exist"
    assert_eq "$(stat -c %u "$f")" "$uid_a" "owner of $f"
done
runuser -u "$UA" -- cat "$ND/work/private.txt" >/dev/null 2>&1 || fail "$UA cannot read its own $ND/work/private.txt"
runuser -u "$UA" -- cat "$ND/output.log" >/dev/null 2>&1 || fail "$UA cannot read its own $ND/output.log"
for f in "$ND/output.log" "$ND/work/private.txt"; do
    if runuser -u "$UB" -- cat "$f" >/dev/null 2>&1; then
        fail "$UB can read $UA's $f"
    fi
done
if runuser -u "$UB" -- ls "$ND" >/dev/null 2>&1; then
    fail "$UB can list $UA's node directory $ND"
fi
if runuser -u "$UB" -- touch "$ND/work/intruder" 2>/dev/null; then
    fail "$UB can write into $UA's node directory"
fi
ok "node directory and files are owned by the user; another user can neither read nor list them"

# ---- root cancels another user's group
jgc_ok cancel "$GB"
wait_state "$GB" CANCELLED 15
# (A's group still runs: look only for what belongs to B's group.)
for ((i = 0; i < 15; i++)); do
    left=$({
        pgrep -u "$UB"
        pids_with_env "SKYPILOT_JOBGROUP_NAME=$NB" "JGSCHED_GROUP_ID=$GB"
        pgrep -f -- "--hold $(jg_regex_escape "$JGSCHED_HOME/state/groups/$GB")\$"
    } | tr '\n' ' ')
    left=${left% }
    [ -z "$left" ] && break
    sleep 0.2
done
# shellcheck disable=SC2086
[ -z "$left" ] || fail "processes of $UB's group left after root cancelled it: $(describe_pids $left)"
ok "root cancels $UB's group; nothing of $UB is left running"

# ---- per-user limit: A's second group waits, B's runs
NA2=second-a-$TAG
NB2=second-b-$TAG
cat >"$W/$NA2.yaml" <<EOF
---
name: $NA2
placement: SAME_INFRA
execution: parallel
---
name: main
run: echo "second of $UA ran"
EOF
sed "s/$NA2/$NB2/; s/$UA/$UB/" "$W/$NA2.yaml" >"$W/$NB2.yaml"
chmod 644 "$W/$NA2.yaml" "$W/$NB2.yaml"
jg_as_submit "$UA" "$W/$NA2.yaml"; GA2=$GID
jg_as_submit "$UB" "$W/$NB2.yaml"; GB2=$GID
wait_state "$GB2" SUCCEEDED 20
st=$(group_state "$GA2")
assert_eq "$st" PENDING "state of $UA's second group while its first runs (running_groups: 1)"
jg_as_ok "$UA" show "$GA2" --json
reason=$(printf '%s' "$OUT" | jq -r '(.group // .).reason')
contains_ci "$reason" "limit" || fail "reason of $UA's pending group does not mention the limit: '$reason'"
ok "$UA's second group waits PENDING ($reason) while $UB's group runs and succeeds"
touch "$W/stop-$NA"
wait_state "$GA" SUCCEEDED 20
wait_state "$GA2" SUCCEEDED 20
jg_as_ok "$UA" logs "$GA2"
assert_contains "$OUT" "second of $UA ran" "logs of $UA's second group"
ok "$UA's second group starts once the first ends"

assert_no_leftovers "$NA" "$GA" "$NA2" "$GA2" "$NB2" "$GB2"
for u in "$UA" "$UB"; do
    left=$(pgrep -u "$u" | tr '\n' ' ')
    [ -z "$left" ] || fail "processes of $u left after their groups ended: $left"
done
ok "nothing of either user is left running"

# ---- the store holds every user's groups (specs, environments): show of another
# user's group is denied, so the store file itself must not be readable either
for f in "$JGSCHED_HOME/jgsched.db" "$JGSCHED_HOME/jgsched.db-wal" "$JGSCHED_HOME/jgschedd.log"; do
    [ -e "$f" ] || continue
    if runuser -u "$UB" -- head -c 1 "$f" >/dev/null 2>&1; then
        fail "$UB can read $f ($(stat -c %A "$f")): every user's group specs are readable by everyone"
    fi
done
ok "the store, its WAL and the daemon log are closed to other users"

jg_done
