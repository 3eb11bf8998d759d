#!/usr/bin/env bash
# security_files.sh - a hostile local user against root's daemon (jgschedd
# --system): root never deletes, creates or removes files for a user where
# the user could not.  Attacks, each run as a throwaway unprivileged user A:
#   1. cleanup's recursive delete: while A's group is cancelled, A swaps a
#      directory of its node's work tree for a symbolic link to a root-owned
#      directory of decoys (renameat2 RENAME_EXCHANGE in a loop, a small C
#      helper built here); no decoy may go, and A's files still go.
#   2. `volume rm`: the same swap inside A's volume while A removes it.
#   3. squatting: A's group mounts a volume on B's missing ~/.ssh; root must
#      not create it (the node fails, naming the volume and the path).
#   4. a mount point shared by two instances: A's group in instance 1 makes
#      it, A's group in instance 2 mounts its own volume there; instance 1's
#      cleanup must not remove it from under instance 2's node.
# The swaps are bounded in time (SWAP_SECONDS) and stop once the delete is
# over.  Users, the second instance, the helper and every file are removed on
# any exit.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"

jg_need_root_and_tools cc

UA=jgsf_a_$$
UB=jgsf_b_$$
DECOYS=2000
SWAP_SECONDS=30
# Mount paths may lie neither under /tmp (made in the node's own /tmp) nor
# under a system directory such as /var: B's home and A's area go here.
SF_BASE=""
HOME2=""

# The second instance is stopped first; jg_teardown then stops the first.
jg_extra_teardown() {
    local p
    for p in $(jobs -p); do kill "$p" 2>/dev/null; done
    if [ -n "$HOME2" ] && [ -S "$HOME2/jgsched.sock" ]; then
        JGSCHED_SOCKET=$HOME2/jgsched.sock timeout 10 "$JGSCHED" cancel -a >/dev/null 2>&1
        JGSCHED_SOCKET=$HOME2/jgsched.sock timeout 10 "$JGSCHED" daemon stop >/dev/null 2>&1
    fi
}
# SF_BASE holds B's home and A's mount points: removed once no node uses them.
jg_final_teardown() {
    [ -n "$SF_BASE" ] && rm -rf "$SF_BASE"
}
jg_install_teardown

SF_BASE=$(mktemp -d /home/jgsf.XXXXXX 2>/dev/null || mktemp -d /srv/jgsf.XXXXXX) ||
    fail "cannot make a directory under /home or /srv"
chmod 755 "$SF_BASE"
jg_throwaway_user "$UA"
jg_throwaway_user "$UB" -m -d "$SF_BASE/$UB"
chmod 755 "$SF_BASE/$UB"        # a home others may read, as many are

JG_CONFIG="backends:
  local:
    capacity: {cpus: 64, memory: 256GB}
    nat: false"
JG_DAEMON_ARGS=--system
jg_setup
SOCK=$JGSCHED_HOME/jgsched.sock
W=$JG_WORK
chmod 755 "$W"
grep -q "hostnames do not resolve" "$JGSCHED_HOME/jgschedd.log" 2>/dev/null && {
    echo "# skip: nodes have no mount namespace of their own here"
    exit 77
}

# state_of SOCKET ID: the group's state in that instance ("" if unknown).
state_of() {
    JGSCHED_SOCKET=$1 timeout 30 "$JGSCHED" show "$2" --json 2>/dev/null |
        jq -r '(.group // .).state // empty' 2>/dev/null
}

# wait_for_state SOCKET ID "A|B" SECONDS: until the group is in one of them.
wait_for_state() {
    local s i
    for ((i = 0; i < $4 * 5; i++)); do
        s=$(state_of "$1" "$2")
        state_in "$s" "$3" && return 0
        sleep 0.2
    done
    fail "group $2 is '$s' after $4 s, expected $3"
}

# wait_until SECONDS CMD...: until CMD succeeds; 1 if it never did.
wait_until() {
    local n=$1 i
    shift
    for ((i = 0; i < n * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# ---- the attacker's tool: exchange two names (a directory of the user's in
# the tree being deleted, and a link to the decoys kept outside it) and back,
# then wait ~20 us, over and over, until a stop file appears or the time is
# up.  The link stands there only for an instant each time, so a walk by
# path mostly sees a plain directory (and goes on) while some of its deletes
# by full path land in the decoys.  Both directories are held open, so the
# swaps go on even after the tree was moved somewhere the user cannot name.
cat >"$W/swap.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(int argc, char **argv)
{
    if (argc != 7)
        return 2;
    int a = open(argv[1], O_PATH | O_DIRECTORY), b = open(argv[3], O_PATH | O_DIRECTORY);
    if (a < 0 || b < 0)
        return 3;
    long long end = now_ns() + atoll(argv[6]) * 1000000000LL;
    long swaps = 0;
    while (now_ns() < end && access(argv[5], F_OK) != 0) {
        for (int i = 0; i < 1000; i++) {
            if (renameat2(a, argv[2], b, argv[4], RENAME_EXCHANGE) == 0) {
                swaps++;
                renameat2(a, argv[2], b, argv[4], RENAME_EXCHANGE);
            }
            for (long long t = now_ns(); now_ns() - t < 20000;)
                ;
        }
    }
    printf("%ld\n", swaps);
    return 0;
}
EOF
cc -O2 -o "$W/swap" "$W/swap.c" || fail "cannot build the swap helper"
chmod 755 "$W/swap"

# decoys DIR: DECOYS root-owned files f1..fN in a root-owned directory.
decoys() {
    mkdir -m 755 "$1" && (cd "$1" && seq -f 'f%.0f' 1 "$DECOYS" | xargs touch) ||
        fail "cannot make the decoys in $1"
}
count_decoys() { find "$1" -maxdepth 1 -type f -name 'f*' | wc -l; }

# bait USER DIR LINKDIR DECOYDIR: as USER, DIR/x holding f1..fN and
# LINKDIR/l -> DECOYDIR, the two names the attacker will exchange.
bait() {
    runuser -u "$1" -- bash -c 'mkdir -p "$1/x" && cd "$1/x" && seq -f "f%.0f" 1 "$4" | xargs touch &&
        ln -s "$3" "$2/l"' _ "$2" "$3" "$4" "$DECOYS" || fail "cannot lay the bait in $2 as $1"
}

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)

# ================================================================ 1. cleanup
decoys "$W/decoy1"
cat >"$W/sleeper.yaml" <<EOF
---
name: sleeper-$TAG
placement: SAME_INFRA
execution: parallel
---
name: s
run: exec sleep 300
EOF
chmod 644 "$W/sleeper.yaml"
jg_as_submit "$UA" "$W/sleeper.yaml"
G1=$GID
wait_for_state "$SOCK" "$G1" RUNNING 30
WORK1=$JGSCHED_HOME/state/groups/$G1/s-0/work
[ -d "$WORK1" ] || fail "no work directory $WORK1"
# The link waits in the node's directory (the user's), outside the tree.
bait "$UA" "$WORK1" "$WORK1/.." "$W/decoy1"
runuser -u "$UA" -- "$W/swap" "$WORK1" x "$WORK1/.." l "$W/stop1" "$SWAP_SECONDS" >"$W/swaps1" 2>&1 &
SWAPPER=$!
jg_as_ok "$UA" cancel "$G1"
wait_for_state "$SOCK" "$G1" CANCELLED 30
wait_until 30 test ! -e "$WORK1"
gone=$?
touch "$W/stop1"
wait "$SWAPPER"
left=$(count_decoys "$W/decoy1")
[ "$left" -eq "$DECOYS" ] ||
    fail "cleanup deleted $((DECOYS - left)) of $DECOYS root-owned decoys through a swapped link ($(cat "$W/swaps1") swaps)"
[ "$gone" -eq 0 ] || fail "cleanup left $WORK1"
ok "group cleanup under a RENAME_EXCHANGE race ($(cat "$W/swaps1") swaps) deletes no root-owned file"
trash_empty() { [ -z "$(ls -A "$JGSCHED_HOME/state/trash" 2>/dev/null)" ]; }
wait_until 60 trash_empty || fail "the deleter left $(ls -A "$JGSCHED_HOME/state/trash" | head -3) in the trash"
ok "the user's tree is deleted in the background (the trash empties)"

# ================================================================ 2. volume rm
decoys "$W/decoy2"
jg_as_ok "$UA" volume create "v-$TAG"
jg_as_ok "$UA" volume create "aux-$TAG"         # where the link waits
VOL=$JGSCHED_HOME/volumes/v-$TAG
AUX=$JGSCHED_HOME/volumes/aux-$TAG
[ "$(stat -c %U "$VOL")" = "$UA" ] || fail "the volume directory $VOL is not $UA's"
bait "$UA" "$VOL" "$AUX" "$W/decoy2"
runuser -u "$UA" -- "$W/swap" "$VOL" x "$AUX" l "$W/stop2" "$SWAP_SECONDS" >"$W/swaps2" 2>&1 &
SWAPPER=$!
jg_as_ok "$UA" volume rm "v-$TAG"
wait_until 30 test ! -e "$VOL"
gone=$?
touch "$W/stop2"
wait "$SWAPPER"
left=$(count_decoys "$W/decoy2")
[ "$left" -eq "$DECOYS" ] ||
    fail "volume rm deleted $((DECOYS - left)) of $DECOYS root-owned decoys through a swapped link ($(cat "$W/swaps2") swaps)"
[ "$gone" -eq 0 ] || fail "volume rm left $VOL"
ok "volume rm under a RENAME_EXCHANGE race ($(cat "$W/swaps2") swaps) deletes no root-owned file"
vtrash_empty() { [ -z "$(ls -A "$JGSCHED_HOME/volumes/.trash" 2>/dev/null)" ]; }
wait_until 60 vtrash_empty || fail "the deleter left $(ls -A "$JGSCHED_HOME/volumes/.trash" | head -3) in the volumes' trash"
ok "the removed volume's files are deleted in the background"
jg_as_ok "$UA" volume rm "aux-$TAG"

# ================================================================ 3. squatting
jg_as_ok "$UA" volume create "keys-$TAG"
SSH=$SF_BASE/$UB/.ssh
cat >"$W/squat.yaml" <<EOF
---
name: squat-$TAG
placement: SAME_INFRA
execution: parallel
---
name: s
volumes: {$SSH: keys-$TAG}
run: exec sleep 300
EOF
chmod 644 "$W/squat.yaml"
jg_as_submit "$UA" "$W/squat.yaml"
GS=$GID
# Running (the old way: root made the mount point) or over (refused).
running_or_over() {
    local s
    s=$(state_of "$SOCK" "$GS")
    [ "$s" = RUNNING ] || is_terminal "$s"
}
wait_until 30 running_or_over || fail "group $GS is '$(state_of "$SOCK" "$GS")' after 30 s"
[ ! -e "$SSH" ] || fail "root made $SSH ($(stat -c '%U:%G %a' "$SSH")) for $UA in $UB's home (group $GS is $(state_of "$SOCK" "$GS"))"
over() { is_terminal "$(state_of "$SOCK" "$GS")"; }
wait_until 60 over || fail "group $GS is '$(state_of "$SOCK" "$GS")', expected it to fail"
assert_eq "$(state_of "$SOCK" "$GS")" FAILED "state of the group mounting a volume on $UB's ~/.ssh"
show_json "$GS"
assert_contains "$SHOW" "volume keys-$TAG: the mount path $SSH does not exist and $UA may not create it" \
    "show of the group mounting a volume on $UB's missing ~/.ssh"
[ ! -e "$SSH" ] || fail "$SSH exists after group $GS"
ok "a volume on another user's missing ~/.ssh is refused naming the volume and path; nothing is made"
jg_as_ok "$UA" volume rm "keys-$TAG"

# ================================================================ 4. two instances
AREA=$SF_BASE/area-$UA
mkdir -m 755 "$AREA" && chown "$UA" "$AREA"
MNT=$AREA/mnt
HOME2=$JGSCHED_HOME/second
mkdir -p "$HOME2"
printf '%s\n' "$JG_CONFIG" >"$HOME2/config.yaml"
JGSCHED_HOME=$HOME2 timeout -k 5 30 "$JGSCHEDD" --system >"$W/second.start" 2>&1 ||
    { cat "$W/second.start" >&2; fail "the second jgschedd exited $? at start"; }
SOCK2=$HOME2/jgsched.sock
wait_until 10 test -S "$SOCK2" || fail "the second instance has no socket $SOCK2"

jg_as_ok "$UA" volume create "one-$TAG"
JG_AS_SOCKET=$SOCK2 jg_as_ok "$UA" volume create "two-$TAG"
runuser -u "$UA" -- touch "$HOME2/volumes/two-$TAG/hello" || fail "cannot write into volume two-$TAG"
cat >"$W/one.yaml" <<EOF
---
name: one-$TAG
placement: SAME_INFRA
execution: parallel
---
name: s
volumes: {$MNT: one-$TAG}
run: exec sleep 300
EOF
cat >"$W/two.yaml" <<EOF
---
name: two-$TAG
placement: SAME_INFRA
execution: parallel
---
name: s
volumes: {$MNT: two-$TAG}
run: |
  while [ ! -e $W/go ]; do sleep 0.1; done
  if [ -e $MNT/hello ]; then echo STILL-MOUNTED; else echo LOST; exit 1; fi
EOF
chmod 644 "$W/one.yaml" "$W/two.yaml"
jg_as_submit "$UA" "$W/one.yaml"
GA=$GID
wait_for_state "$SOCK" "$GA" RUNNING 30
[ -d "$MNT" ] || fail "no mount point $MNT while group $GA runs"
MNT_OWNER=$(stat -c %U "$MNT")
JG_AS_SOCKET=$SOCK2 jg_as_submit "$UA" "$W/two.yaml"
GB=$GID
wait_for_state "$SOCK2" "$GB" RUNNING 30
jg_as_ok "$UA" cancel "$GA"
wait_for_state "$SOCK" "$GA" CANCELLED 30
# Instance 1's cleanup is over once its node's work tree is gone.
wait_until 30 test ! -e "$JGSCHED_HOME/state/groups/$GA/s-0/work" || fail "instance 1 did not clean up group $GA"
touch "$W/go"
two_over() { is_terminal "$(state_of "$SOCK2" "$GB")"; }
wait_until 60 two_over || fail "instance 2's group $GB is '$(state_of "$SOCK2" "$GB")' after 60 s"
log=$(JGSCHED_SOCKET=$SOCK2 timeout 30 "$JGSCHED" logs "$GB" 2>&1)
assert_contains "$log" STILL-MOUNTED "instance 2's node after instance 1's cleanup"
assert_eq "$(state_of "$SOCK2" "$GB")" SUCCEEDED "instance 2's group"
[ -d "$MNT" ] || fail "instance 1's cleanup removed the mount point $MNT"
ok "one instance's cleanup leaves a mount point another instance's node still uses"
assert_eq "$MNT_OWNER" "$UA" "owner of the mount point made for $UA's group"
ok "a missing mount point in a directory of the user's is made as that user"
jg_as_ok "$UA" volume rm "one-$TAG"
JG_AS_SOCKET=$SOCK2 jg_as_ok "$UA" volume rm "two-$TAG"

jg_done
