#!/usr/bin/env bash
# store_full.sh - the daemon's disk fills up: a cancel the store cannot record
# is refused (exit 4, "database or disk is full"), changes nothing and is not
# lost or half-done after a restart; once there is room, the same cancel goes
# through and survives a restart.  (Before, `cancel` printed "Cancelling group
# N" and exited 0, the commit failed, and after a restart the group ran to
# SUCCEEDED.)
#
# The instance lives on a 32 MB tmpfs mounted in a private mount namespace
# this script re-runs itself in (root and unshare needed, else skipped), so
# filling it touches nothing else on the machine.
if [ -z "${JG_IN_MOUNT_NS:-}" ]; then
    if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null || ! command -v mountpoint >/dev/null; then
        echo "# skip: needs root, unshare and mountpoint (a tmpfs of its own to fill)"
        echo "0 passed, 0 failed"
        exit 0
    fi
    # The home directory stays behind the mount when the namespace goes:
    # the inner run names it here and this outer one removes it.
    JG_HOME_NOTE=$(mktemp /tmp/jgnote.XXXXXX) || exit 1
    export JG_HOME_NOTE
    JG_IN_MOUNT_NS=1 unshare --mount --propagation private -- bash "$0" "$@"
    rc=$?
    home=$(cat "$JG_HOME_NOTE" 2>/dev/null)
    case $home in /tmp/jgtest.*) rm -rf "$home" ;; esac
    rm -f "$JG_HOME_NOTE"
    exit "$rc"
fi
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/tools/daemon.sh
. "$(dirname "$0")/tools/daemon.sh"

JG_DAEMON_WRAP="$(cd "$(dirname "$0")" && pwd)/tools/tmpfs_home.sh"
jg_setup
printf '%s\n' "$JGSCHED_HOME" >"$JG_HOME_NOTE"
mountpoint -q "$JGSCHED_HOME" || fail "$JGSCHED_HOME is not on a tmpfs of its own"

TAG=$(tr -dc 'a-z0-9' </dev/urandom 2>/dev/null | head -c 6)
W=$JG_WORK
FILL=$JGSCHED_HOME/fill

# fill_disk: takes every free byte of the tmpfs.
fill_disk() {
    dd if=/dev/zero of="$FILL" bs=64k >/dev/null 2>&1
    dd if=/dev/zero of="$FILL.tail" bs=512 >/dev/null 2>&1
    [ "$(df --output=avail "$JGSCHED_HOME" | tail -n 1 | tr -d ' ')" -lt 64 ] ||
        fail "the tmpfs at $JGSCHED_HOME did not fill up"
}

free_disk() {
    rm -f "$FILL" "$FILL.tail"
}

cat >"$W/forever-$TAG.yaml" <<YAML
---
name: forever-$TAG
placement: SAME_INFRA
execution: parallel
---
name: main
resources:
  cpus: 1
run: |
  echo ready
  while [ ! -e $W/stop-forever ]; do sleep 0.2; done
YAML
submit_detached "$W/forever-$TAG.yaml"; G=$GID
wait_log "$G" ready 30
wait_state "$G" RUNNING 10

# ---- a cancel on a full disk: refused with exit 4, nothing changed
fill_disk
jgc cancel "$G"
free_disk
assert_eq "$RC" 4 "exit status of a cancel the store could not record (stdout: $OUT)"
assert_contains "$ERR" "not cancelled" "message of a cancel the store could not record"
assert_contains "$ERR" "full" "message of a cancel the store could not record"
assert_not_contains "$OUT" "Cancelling group" "output of a refused cancel"
assert_contains "$(cat "$JGSCHED_HOME/jgschedd.log")" "database or disk is full" "daemon log"
assert_eq "$(group_state "$G")" RUNNING "state of the group after the refused cancel"
ok "a cancel on a full disk is refused: exit 4, '$(head -n 1 <<<"$ERR")'"

daemon_kill TERM
daemon_start
assert_eq "$(group_state "$G")" RUNNING "state of the group after a restart"
ok "after a restart the group is still RUNNING: the refused cancel left nothing behind"

# ---- with room again, the cancel goes through and survives a restart
jgc_ok cancel "$G"
assert_contains "$OUT" "Cancelling group $G" "output of the cancel"
daemon_kill 9
daemon_start
wait_state "$G" CANCELLED 30
assert_no_leftovers "forever-$TAG" "$G"
ok "an acknowledged cancel survives kill -9 of the daemon: CANCELLED"

jg_done
