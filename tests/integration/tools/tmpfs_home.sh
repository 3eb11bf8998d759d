#!/usr/bin/env bash
# tools/tmpfs_home.sh CMD...: runs CMD with $JGSCHED_HOME on a small tmpfs of
# its own (JG_TMPFS_SIZE, default 32m), so a test can fill the daemon's disk.
# The first call mounts it, keeping the files already in the directory (the
# config); later calls find it mounted.  Used as JG_DAEMON_WRAP by
# store_full.sh, inside the private mount namespace that script runs in (the
# mount is seen by nothing outside it).
set -eu
if ! mountpoint -q "$JGSCHED_HOME"; then
    keep=$(mktemp -d /tmp/jgtmpfs.XXXXXX)
    cp -a "$JGSCHED_HOME"/. "$keep"/
    mount -t tmpfs -o "size=${JG_TMPFS_SIZE:-32m},mode=0700" jgtest-store "$JGSCHED_HOME"
    cp -a "$keep"/. "$JGSCHED_HOME"/
    rm -rf "$keep"
fi
exec "$@"
