/* fsutil.c - opening, creating and deleting in directories a user can write.
 *
 * Why a recursive delete looks like this (include/jgsched/fsutil.h has the
 * contract).  nftw() followed by unlink(full path) lost to a user who swapped
 * a directory of theirs for a symbolic link between the walk and the unlink
 * (renameat2 RENAME_EXCHANGE in a loop): root then deleted files elsewhere.
 * Here no full path is ever used below the top:
 *
 *  - every directory is opened relative to its parent's descriptor with
 *    O_NOFOLLOW (a link is unlinked, never entered), and what is deleted is
 *    deleted relative to the descriptor of the directory that was opened, so
 *    a rename or an exchange after the open only moves what we delete inside
 *    directories that were really in the tree;
 *  - a directory on another file system (st_dev) is neither entered nor
 *    removed: removing a mount point would detach the mount wherever it is;
 *  - as root, a directory that belongs to a user is emptied by a forked child
 *    that dropped to that user (setgroups/setgid/setuid): "deleting a user's
 *    tree is done as that user", so even a hole in the reasoning above could
 *    only delete what the user may delete anyway.  Root then removes the
 *    emptied directory, and of what the user could not remove (a directory
 *    root once made there) only directories left empty, never a file.
 *
 * Both, because each covers the other's blind spot: the descriptors keep root
 * from being redirected, the uid keeps the kernel as the final judge.
 *
 * Depth is bounded without losing deep trees: a directory deeper than
 * MAX_DEPTH is moved up to the top of the tree being deleted and taken from
 * there on a later pass, so descriptors and stack stay bounded however deep a
 * user nests directories.  The walk reads directories with getdents64 into a
 * stack buffer: it allocates nothing, so it is fit for a forked child.
 *
 * The trash (src/trash.c) keeps a big delete off the daemon's loop; its
 * deleter program (src/deleter.c) empties it with jg_trash_empty.
 */
#include "jgsched/fsutil.h"
#include "jgsched/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_DEPTH 48            /* deeper directories are moved up to the top first */
#define INNER_PASSES 3          /* re-reads of a directory that still has entries */
#define TOP_PASSES 100000       /* the top also takes what was moved up to it */
#define NOBODY_GID 65534        /* a user with no passwd entry deletes with no group */
#define TRASH_ROUNDS 5          /* the deleter's tries at what stayed, a second apart */

/* ---- the walk ------------------------------------------------------------ */

struct raw_dirent {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

typedef struct {
    dev_t dev;                  /* the tree's file system: never left */
    int top;                    /* the tree's top directory (read descriptor) */
    unsigned long moved;        /* names given to directories moved up */
    bool prune_only;            /* remove empty directories only, nothing else */
    int failed;                 /* errno of the first thing that stayed, 0 if none */
    char what[NAME_MAX + 1];    /* its name */
} walk_t;

static void note(walk_t *w, const char *name, int e)
{
    if (w->failed || w->prune_only)
        return;
    w->failed = e ? e : EIO;
    snprintf(w->what, sizeof w->what, "%s", name);
}

static int remove_entry(walk_t *w, int parent, const char *name, unsigned char type, int depth);

/* Removes everything in the directory read through rd (at depth `depth`). */
static void empty_dir(walk_t *w, int rd, int depth)
{
    char buf[4096] __attribute__((aligned(8)));
    int passes = depth == 0 ? TOP_PASSES : INNER_PASSES;
    for (int pass = 0; pass < passes; pass++) {
        bool progress = false, left = false;
        unsigned long moved = w->moved;     /* moved up to the top during this pass */
        if (lseek(rd, 0, SEEK_SET) < 0) {
            note(w, ".", errno);
            return;
        }
        for (;;) {
            long n = syscall(SYS_getdents64, rd, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                note(w, ".", errno);
                return;
            }
            if (n == 0)
                break;
            for (long off = 0; off < n;) {
                const struct raw_dirent *d = (const void *)(buf + off);
                off += d->d_reclen;
                if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                    continue;
                int r = remove_entry(w, rd, d->d_name, d->d_type, depth + 1);
                progress = progress || r >= 0;
                left = left || r != 0;
            }
        }
        if (depth == 0 && w->moved != moved)
            continue;
        if (!left || !progress)
            return;
    }
}

/* A directory of our own that we may not read or write (mode 0500, say):
 * given back the owner's rwx through the descriptor we hold. */
static void own_access(int pathfd, const struct stat *st)
{
    if (st->st_uid != geteuid() || geteuid() == 0 || (st->st_mode & S_IRWXU) == S_IRWXU)
        return;
    char self[32];
    snprintf(self, sizeof self, "/proc/self/fd/%d", pathfd);
    (void)chmod(self, (st->st_mode & 07777) | S_IRWXU);
}

/* As root: empties directory pathfd in a child that became its owner. */
static void empty_as_owner(const walk_t *w, int pathfd, const struct stat *st)
{
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        struct passwd *pw = getpwuid(st->st_uid);
        gid_t gid = pw ? pw->pw_gid : NOBODY_GID;
        if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(st->st_uid) < 0)
            _exit(2);
        own_access(pathfd, st);
        int rd = openat(pathfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rd < 0)
            _exit(1);
        walk_t u = {.dev = w->dev, .top = rd};
        empty_dir(&u, rd, 0);
        _exit(u.failed ? 1 : 0);
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Removes parent/name, a whole tree if it is a directory.  0: removed;
 * 1: moved up to the top (to be removed on a later pass); -1: stayed. */
static int remove_entry(walk_t *w, int parent, const char *name, unsigned char type, int depth)
{
    if (type != DT_DIR && type != DT_UNKNOWN) {
        if (w->prune_only)
            return -1;
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
            return 0;
        if (errno != EISDIR) {
            note(w, name, errno);
            return -1;
        }
    }
    int fd = openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno != ENOTDIR && errno != ELOOP) {
            note(w, name, errno);
            return -1;
        }
        /* Not a directory (a link, or it was swapped for one): the name goes. */
        if (w->prune_only)
            return -1;
        if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
            return 0;
        note(w, name, errno);
        return -1;
    }
    int rc = -1, rd = -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        note(w, name, errno);
        goto done;
    }
    if (st.st_dev != w->dev) {
        note(w, name, EXDEV);       /* a mount point: not ours to enter or remove */
        goto done;
    }
    if (depth > MAX_DEPTH && w->prune_only)
        goto done;
    if (depth > MAX_DEPTH) {
        char up[48];
        snprintf(up, sizeof up, ".deep.%ld.%lu", (long)getpid(), w->moved++);
        if (renameat(parent, name, w->top, up) == 0) {
            rc = 1;
            goto done;
        }
        note(w, name, errno);
        goto done;
    }
    bool by_owner = geteuid() == 0 && st.st_uid != 0 && !w->prune_only;
    if (by_owner) {
        empty_as_owner(w, fd, &st);
    } else {
        own_access(fd, &st);
        if ((rd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
            note(w, name, errno);
            goto done;
        }
        int saved = w->top;
        if (depth == 0)
            w->top = rd;
        empty_dir(w, rd, depth);
        w->top = saved;
    }
    if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
        rc = 0;
        goto done;
    }
    int e = errno;
    if (by_owner && (e == ENOTEMPTY || e == EEXIST) &&
        (rd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        /* What the owner could not remove: directories only, and only empty. */
        walk_t p = {.dev = w->dev, .top = rd, .prune_only = true};
        empty_dir(&p, rd, depth);
        if (unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            rc = 0;
            goto done;
        }
        e = errno;
    }
    note(w, name, e);
done:
    if (rd >= 0)
        close(rd);
    close(fd);
    return rc;
}

int jg_fs_remove_tree_at(int dirfd, const char *name, jg_error_t *err)
{
    struct stat st;
    if (fstat(dirfd, &st) < 0)
        return jg_errprintf(err, "cannot remove %s: %s", name, strerror(errno));
    walk_t w = {.dev = st.st_dev, .top = -1};
    if (remove_entry(&w, dirfd, name, DT_UNKNOWN, 0) == 0)
        return 0;
    if (w.failed == EXDEV)
        return jg_errprintf(err, "cannot remove %s: %s is on another file system (a mount "
                            "point); left in place", name, w.what);
    const char *why = strerror(w.failed ? w.failed : ENOTEMPTY);
    if (strcmp(w.what, name) == 0)
        return jg_errprintf(err, "cannot remove %s: %s", name, why);
    return jg_errprintf(err, "cannot remove %s: %s in it: %s", name, w.what, why);
}

/* ---- emptying a trash ----------------------------------------------------- */

void jg_trash_empty(int tfd, const char *dir)
{
    char buf[4096] __attribute__((aligned(8)));
    /* A user still holding a directory of a tree open can change it while
     * it goes (the walk then leaves what moved): a few rounds, a second
     * apart, and only the last one's failures are logged. */
    for (int round = 0; round < TRASH_ROUNDS; round++) {
        bool failed = false, last = round == TRASH_ROUNDS - 1;
        for (int pass = 0; pass < 100; pass++) {
            bool any = false;
            failed = false;
            if (lseek(tfd, 0, SEEK_SET) < 0)
                break;
            long n;
            while ((n = syscall(SYS_getdents64, tfd, buf, sizeof buf)) > 0) {
                for (long off = 0; off < n;) {
                    const struct raw_dirent *d = (const void *)(buf + off);
                    off += d->d_reclen;
                    if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                        continue;
                    jg_error_t e;
                    if (jg_fs_remove_tree_at(tfd, d->d_name, &e) == 0)
                        any = true;
                    else if ((failed = true) && last)
                        jg_log("warn", "trash %s: %s", dir, e.text);
                }
            }
            if (!any)
                break;
        }
        if (!failed)
            break;
        if (!last)
            sleep(1);
    }
}

