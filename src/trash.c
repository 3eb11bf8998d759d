/* trash.c - a trash directory a background deleter empties (fsutil.h).
 *
 * The trash keeps a big delete off the daemon's loop: one rename takes the
 * tree out of sight at once (a log or work directory is "gone" when cleanup
 * returns), and a low-priority deleter empties the trash; the loop reaps it by
 * its pidfd and starts it again if more arrived meanwhile.
 *
 * The deleter is its own program, jgsched-deleter (src/deleter.c), started
 * with posix_spawn: a fork of the daemon cost it page-table copies and then
 * copy-on-write faults on every page it touched, growing with its size.
 * Trees put within TRASH_BATCH_MS of each other share one deleter.
 */
#include "jgsched/fsutil.h"
#include "jgsched/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long trees put in the trash wait for the deleter: one deleter then
 * takes every tree that ended within that time, not one each. */
#define TRASH_BATCH_MS 500

struct jg_trash {
    char *dir;
    char *deleter;              /* the deleter program (jgsched-deleter) */
    jg_loop_t *loop;
    pid_t pid;                  /* the running deleter, 0 if none */
    int pidfd;                  /* its pidfd, watched on the loop; -1 if none */
    bool again;                 /* something arrived while it ran */
    uint64_t batch_timer;       /* the deleter is due when it fires; 0 if none */
    unsigned long seq;          /* names in the trash */
};

/* The trash directory, opened without following a link and checked to be
 * ours alone (a trash others could write would be a way into root's walk). */
static int trash_open(const jg_trash_t *t, bool create, jg_error_t *err)
{
    int fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdir(t->dir, 0700) < 0 && errno != EEXIST)
            return jg_errprintf(err, "cannot create %s: %s", t->dir, strerror(errno));
        fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0)
        return jg_errprintf(err, "cannot open %s: %s", t->dir, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        close(fd);
        return jg_errprintf(err, "%s is not a private directory of uid %d (mode 0700)", t->dir,
                            (int)geteuid());
    }
    return fd;
}

static void trash_reaped(jg_loop_t *loop, int fd, uint32_t revents, void *arg);

static void trash_spawn(jg_trash_t *t)
{
    if (t->batch_timer) {
        jg_loop_cancel_timer(t->loop, t->batch_timer);
        t->batch_timer = 0;
    }
    jg_error_t e;
    int tfd = trash_open(t, false, &e);
    if (tfd < 0)
        return;
    /* The trash as descriptor 3, stderr (the daemon's log): nothing else. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, tfd, 3);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {"jgsched-deleter", t->dir, NULL};
    char *envp[] = {NULL};
    pid_t pid;
    int failed = posix_spawn(&pid, t->deleter, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (failed) {
        jg_log("warn", "trash %s: cannot start the deleter %s: %s", t->dir, t->deleter,
               strerror(failed));
        close(tfd);
        return;
    }
    close(tfd);
    t->again = false;
    t->pid = pid;
    t->pidfd = jg_proc_pidfd_open(pid);
    if (t->pidfd < 0 || jg_loop_add_fd(t->loop, t->pidfd, EPOLLIN, trash_reaped, t, &e) < 0) {
        /* No pidfd to wait on: wait here (only kernels before 5.3). */
        if (t->pidfd >= 0)
            close(t->pidfd);
        t->pidfd = -1;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        t->pid = 0;
    }
}

static void trash_batch_due(jg_loop_t *loop, void *arg)
{
    (void)loop;
    jg_trash_t *t = arg;
    t->batch_timer = 0;
    trash_spawn(t);
}

/* The deleter runs within TRASH_BATCH_MS, on whatever the trash holds then. */
static void trash_later(jg_trash_t *t)
{
    t->again = false;
    if (!t->batch_timer)
        t->batch_timer = jg_loop_add_timer(t->loop, TRASH_BATCH_MS, trash_batch_due, t);
}

static void trash_reaped(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)revents;
    jg_trash_t *t = arg;
    siginfo_t si = {0};
    int r = waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG);
    if ((r == 0 && si.si_pid == 0) || (r < 0 && errno != ECHILD))
        return;                 /* not yet (a spurious wake-up) */
    jg_loop_del_fd(loop, fd);
    close(fd);
    t->pidfd = -1;
    t->pid = 0;
    if (t->again)
        trash_later(t);
}

jg_trash_t *jg_trash_create(const char *dir, const char *deleter, jg_loop_t *loop)
{
    jg_trash_t *t = jg_xcalloc(1, sizeof *t);
    t->dir = jg_xstrdup(dir);
    t->deleter = jg_xstrdup(deleter);
    t->loop = loop;
    t->pidfd = -1;
    struct stat st;
    if (lstat(dir, &st) == 0)
        trash_spawn(t);         /* left over by a daemon that stopped mid-delete */
    return t;
}

int jg_trash_put(jg_trash_t *t, int dirfd, const char *name, jg_error_t *err)
{
    jg_error_t e;
    int tfd = trash_open(t, true, &e);
    int moved = -1, why = 0;
    for (int tries = 0; tfd >= 0 && tries < 100 && moved < 0; tries++) {
        char slot[64];
        snprintf(slot, sizeof slot, "%lld.%ld.%lu", (long long)jg_now_wall_us(), (long)getpid(),
                 t->seq++);
        moved = renameat2(dirfd, name, tfd, slot, RENAME_NOREPLACE);
        why = errno;
        if (moved < 0 && why != EEXIST)
            break;
    }
    if (tfd >= 0)
        close(tfd);
    if (moved == 0) {
        if (t->pid)
            t->again = true;
        else
            trash_later(t);
        return 0;
    }
    if (tfd >= 0 && why == ENOENT)
        return 0;
    if (tfd >= 0 && why != EXDEV && why != EBUSY && why != EINVAL && why != ENOSYS)
        return jg_errprintf(err, "cannot move %s into %s: %s", name, t->dir, strerror(why));
    /* Not movable there (another file system, a mount point): in place. */
    return jg_fs_remove_tree_at(dirfd, name, err);
}

bool jg_trash_busy(const jg_trash_t *t)
{
    return t && (t->pid != 0 || t->batch_timer != 0);
}

void jg_trash_close(jg_trash_t *t)
{
    if (!t)
        return;
    if (t->batch_timer)
        jg_loop_cancel_timer(t->loop, t->batch_timer);
    if (t->pidfd >= 0) {
        siginfo_t si;
        jg_loop_del_fd(t->loop, t->pidfd);
        (void)waitid(P_PIDFD, (id_t)t->pidfd, &si, WEXITED | WNOHANG);
        close(t->pidfd);
    }
    free(t->dir);
    free(t->deleter);
    free(t);
}
