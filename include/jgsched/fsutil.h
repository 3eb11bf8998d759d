/* fsutil.h - file work in directories a user can write, safe for a root daemon.
 *
 * Root never follows, nor looks up twice, a path a user can change (DESIGN
 * section 7).  Everything here goes through directory descriptors opened
 * without following symbolic links (openat O_NOFOLLOW), relative to which each
 * name is used once (unlinkat, mkdirat, renameat2); a tree is never left for
 * another file system (st_dev); and, when the caller is root, a directory
 * that belongs to a user is emptied by a child that became that user, so the
 * kernel refuses whatever the user could not do themselves.
 *
 * Large trees must not stall the daemon's loop: jg_trash_put() moves a tree
 * (one rename) into a private trash directory and a background deleter
 * (jgsched-deleter, started with posix_spawn) deletes it there; the loop reaps
 * it by its pidfd.
 */
#ifndef JGSCHED_FSUTIL_H
#define JGSCHED_FSUTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include "jgsched/error.h"
#include "jgsched/loop.h"

/* Opens directory `path` (absolute) as an O_PATH descriptor without following
 * any symbolic link on the way, creating missing components with mode 0755
 * when create is set, each then given to uid:gid (-1: left as made, as with
 * chown(2)).  Uses no heap (fit for a forked child).  Returns the descriptor
 * (close-on-exec) or -1 with errno (ELOOP: a component is a symbolic link;
 * ENOTDIR: not a directory; EINVAL: "." or ".." or not absolute). */
int jg_fs_open_dir(const char *path, bool create, uid_t uid, gid_t gid);

/* rm -rf of the entry `name` in directory dirfd, in this process (it blocks
 * for as long as the tree takes: the daemon calls it only through jg_trash).
 * Never follows a symbolic link, never enters another file system, uses no
 * full path.  As root, each directory owned by another user is emptied by a
 * child running as that user (and root then removes only what is left empty).
 * A missing entry is not an error.  0, or -1 + err naming the first thing that
 * stayed (everything else is still removed). */
int jg_fs_remove_tree_at(int dirfd, const char *name, jg_error_t *err);

/* A trash directory: trees put there are deleted by a background deleter. */
typedef struct jg_trash jg_trash_t;

/* `dir` is the trash (made 0700 on first use, next to what it receives: a
 * rename cannot cross file systems); `deleter` the program that empties it
 * (jgsched-deleter, src/deleter.c; copied).  If it already holds something (a daemon
 * that died mid-delete), the deleter starts now.  Never fails: problems show
 * at put.  Close with jg_trash_close. */
jg_trash_t *jg_trash_create(const char *dir, const char *deleter, jg_loop_t *loop);

/* Moves dirfd/name into the trash (one renameat2, so it is gone from where it
 * was when this returns) and makes sure the deleter runs (within half a
 * second, so that trees put close together share one).  When it cannot be
 * moved (another file system, a mount point) it is removed in place, blocking.
 * A missing entry is not an error.  0, or -1 + err (left where it was). */
int jg_trash_put(jg_trash_t *t, int dirfd, const char *name, jg_error_t *err);

/* Whether a deleter is still running or due (tests wait for it on the loop). */
bool jg_trash_busy(const jg_trash_t *t);

/* Stops watching; a running deleter is left to finish (a restarted daemon's
 * trash picks up whatever it did not).  NULL ok. */
void jg_trash_close(jg_trash_t *t);

/* The deleter's work (jgsched-deleter): removes everything in the trash read
 * through tfd with jg_fs_remove_tree_at, a few rounds a second apart while
 * something stays (a user may still change a tree), logging what stayed in
 * the last one.  Blocks for as long as that takes. */
void jg_trash_empty(int tfd, const char *dir);

#endif
