/* backends/local/cleanup.c - cleanup: what a group leaves behind, removed.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_protocol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Removes a node directory's runtime files: everything but output.log and status.
 * Its work and tmp trees are the user's: they go to the trash (fsutil.h),
 * moved through the node directory's descriptor and deleted off the loop. */
static int clean_node_dir(local_t *b, const char *dir, jg_error_t *err)
{
    static const char *const names[] = {
        JG_SHIM_ENV, JG_SHIM_SETUP, JG_SHIM_RUN, JG_SHIM_WORKDIR, JG_SHIM_RELEASE,
        "." JG_SHIM_ENV ".tmp", "." JG_SHIM_SETUP ".tmp", "." JG_SHIM_RUN ".tmp",
        "." JG_SHIM_WORKDIR ".tmp",
    };
    static const char *const trees[] = {JG_SHIM_WORK, NODE_TMP};
    int rc = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = jg_xasprintf("%s/%s", dir, names[i]);
        if (unlink(path) < 0 && errno != ENOENT && rc == 0)
            rc = jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
        free(path);
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return rc == 0 && errno != ENOENT ? jg_errprintf(err, "cannot open %s: %s", dir,
                                                         strerror(errno)) : rc;
    for (size_t i = 0; i < sizeof trees / sizeof trees[0]; i++) {
        jg_error_t e;
        if (jg_trash_put(b->trash, dfd, trees[i], &e) < 0 && rc == 0)
            rc = jg_errprintf(err, "%s: %s", dir, e.text);
    }
    close(dfd);
    return rc;
}

/* Removes the files that described the group's network. */
static int remove_network_files(const char *gdir, jg_error_t *err)
{
    int rc = 0;
    const char *names[] = {GROUP_NET, GROUP_HOSTS, GROUP_RESOLV, "." GROUP_NET ".tmp",
                           "." GROUP_HOSTS ".tmp", "." GROUP_RESOLV ".tmp", GROUP_MOUNTS};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *path = jg_xasprintf("%s/%s", gdir, names[i]);
        if (unlink(path) < 0 && errno != ENOENT && rc == 0)
            rc = jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
        free(path);
    }
    return rc;
}

/* ---- the cleanup of one group, step by step ------------------------------
 *
 * cleanup() never waits on the loop.  It kills the group's nodes (and every
 * shim the group's record names) at once, then a cleanup_t follows the rest
 * from pidfd events and timers:
 *
 *   CLEAN_SHIMS    the killed shims' pidfds say they ended (their records
 *                  are reaped and freed by node_dead), or CLEANUP_WAIT_MS passed
 *   CLEAN_CGROUPS  the group's cgroups are killed and removed; one still
 *                  holding processes is tried again every CG_RETRY_MS, and left
 *                  with a warning once CLEANUP_WAIT_MS passed
 *   CLEAN_HUB      the keeper of the group's network is killed; its pidfd
 *                  says it ended (or CLEANUP_WAIT_MS passed)
 *   then           the runtime files go, and cleanup_done() is called, once:
 *                  it queues CLEANED (not for sweep()'s cleanups, which report
 *                  nothing).
 *
 * A cleanup() of a group already being cleaned up joins it (one CLEANED).
 * While it runs, launch() of that group fails its nodes (a group is cleaned
 * up when it is over), and pending launches of it are dropped.  destroy()
 * frees a cleanup midway: the nodes were killed already; what is left stays
 * for sweep() at the next start.
 */

#define CG_RETRY_MS 10              /* cgroups still holding processes: tried again after */

typedef enum { CLEAN_SHIMS, CLEAN_CGROUPS, CLEAN_HUB } clean_step_t;

struct cleanup {
    cleanup_t *next;
    local_t *b;
    int64_t group_id;
    bool report;                /* queue CLEANED at the end (not for sweep()) */
    clean_step_t step;
    int64_t deadline;           /* monotonic ms: the current step stops waiting then */
    uint64_t timer;             /* the step's deadline or retry timer; 0: none */
    jg_netns_hub_t hub;         /* CLEAN_HUB: the keeper being killed (pidfd -1: none) */
    bool hub_watched;           /* hub.pidfd is on the loop */
    bool hub_dead;
    bool advancing;             /* in cleanup_advance: do not re-enter it */
    char *problem;              /* the first thing that went wrong, or NULL */
};

/* The end of a cleanup, called exactly once per cleanup_t, with the first
 * problem met on the way (NULL: none).  Nothing of the group is left here
 * afterwards but its output.log files and what `problem` names. */
static void cleanup_done(local_t *b, int64_t group_id, bool report, const char *problem)
{
    if (problem)
        jg_log("warn", "group %" PRId64 ": cleanup: %s", group_id, problem);
    stop_waits_check(b);        /* its nodes went quietly: their stops are over */
    if (report) {
        queue_event(b, JG_BACKEND_CLEANED, group_id, -1, -1, 0, problem, NULL, false, 0, 0);
    }
}

static cleanup_t *cleanup_find(const local_t *b, int64_t group_id)
{
    for (cleanup_t *c = b->cleanups; c; c = c->next)
        if (c->group_id == group_id)
            return c;
    return NULL;
}

bool cleanup_running(const local_t *b, int64_t group_id)
{
    return cleanup_find(b, group_id) != NULL;
}

static void note_problem(cleanup_t *c, const char *text)
{
    if (!c->problem)
        c->problem = jg_xstrdup(text);
}

/* Stops following the keeper's pidfd and closes it. */
static void drop_hub(cleanup_t *c)
{
    if (c->hub_watched)
        jg_loop_del_fd(c->b->loop, c->hub.pidfd);
    c->hub_watched = false;
    jg_netns_hub_close(&c->hub);
}

static void cleanup_free(cleanup_t *c)
{
    local_t *b = c->b;
    for (cleanup_t **pp = &b->cleanups; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    if (c->timer)
        jg_loop_cancel_timer(b->loop, c->timer);
    drop_hub(c);
    free(c->problem);
    free(c);
}

/* destroy() midway through cleanups: what they would still kill is killed
 * now (nothing of an ended group may outlive the backend that was told to
 * remove it), without waiting; the files left are sweep()'s at the next
 * start. */
void cleanups_free(local_t *b)
{
    while (b->cleanups) {
        cleanup_t *c = b->cleanups;
        if (c->step != CLEAN_HUB) {
            (void)cg_group_try_remove(b, c->group_id);
            if (group_hub_take(b, c->group_id, &c->hub))
                (void)syscall(SYS_pidfd_send_signal, c->hub.pidfd, SIGKILL, NULL, 0);
        }
        cleanup_free(c);
    }
}

static void cleanup_advance(cleanup_t *c);

static void on_cleanup_timer(jg_loop_t *loop, void *arg)
{
    (void)loop;
    cleanup_t *c = arg;
    c->timer = 0;
    cleanup_advance(c);
}

static void on_cleanup_keeper(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)fd;
    (void)revents;
    cleanup_t *c = arg;
    jg_loop_del_fd(loop, c->hub.pidfd);
    c->hub_watched = false;
    c->hub_dead = true;
    cleanup_advance(c);
}

static void arm(cleanup_t *c, int64_t ms)
{
    if (c->timer)
        jg_loop_cancel_timer(c->b->loop, c->timer);
    c->timer = jg_loop_add_timer(c->b->loop, ms > 0 ? ms : 0, on_cleanup_timer, c);
}

/* Whether a killed node of the group still has a record (its shim's end not
 * seen yet). */
static bool shims_left(const local_t *b, int64_t group_id)
{
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->group_id == group_id && n->quiet)
            return true;
    return false;
}

/* Kills the keeper of the group's hub (followed, or only recorded) and
 * waits for it from the loop; false when there is none. */
static bool kill_keeper(cleanup_t *c)
{
    local_t *b = c->b;
    if (!group_hub_take(b, c->group_id, &c->hub))
        return false;
    (void)syscall(SYS_pidfd_send_signal, c->hub.pidfd, SIGKILL, NULL, 0);
    jg_error_t e;
    if (jg_loop_add_fd(b->loop, c->hub.pidfd, EPOLLIN, on_cleanup_keeper, c, &e) == 0)
        c->hub_watched = true;
    else
        c->hub_dead = true;     /* cannot wait for it: jg_netns_hub_destroy reaps what it can */
    return true;
}

/* The keeper ended (or the wait did): reaps it if it is our child. */
static void reap_keeper(cleanup_t *c)
{
    jg_error_t e;
    int pid = (int)c->hub.pid;
    bool dead = c->hub_dead;
    if (c->hub_watched) {
        jg_loop_del_fd(c->b->loop, c->hub.pidfd);
        c->hub_watched = false;
    }
    if (jg_netns_hub_destroy(&c->hub, 0, &e) < 0 && !dead) {
        char *text = jg_xasprintf("group network: keeper pid %d did not die within %d ms", pid,
                                  CLEANUP_WAIT_MS);
        note_problem(c, text);
        free(text);
    }
}

/* The last step: runtime files, the group's record, the network's files. */
static void clean_files(cleanup_t *c)
{
    local_t *b = c->b;
    char *gdir = group_dir(b, c->group_id);
    jg_error_t e;
    DIR *d = opendir(gdir);
    if (!d && errno != ENOENT) {
        char *text = jg_xasprintf("cannot read %s: %s", gdir, strerror(errno));
        note_problem(c, text);
        free(text);
    }
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *dir = jg_xasprintf("%s/%s", gdir, de->d_name);
        struct stat st;
        if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) && clean_node_dir(b, dir, &e) < 0)
            note_problem(c, e.text);
        free(dir);
    }
    if (d)
        closedir(d);
    if (remove_network_files(gdir, &e) < 0)
        note_problem(c, e.text);
    free(gdir);
}

/* Takes the cleanup as far as it can go without waiting; arms what it waits
 * for, or ends it (cleanup_done) and frees it. */
static void cleanup_advance(cleanup_t *c)
{
    local_t *b = c->b;
    if (c->advancing)
        return;
    c->advancing = true;
    for (;;) {
        int64_t now = jg_now_mono_ms();
        if (c->step == CLEAN_SHIMS) {
            if (shims_left(b, c->group_id) && now < c->deadline) {
                arm(c, c->deadline - now);
                break;
            }
            /* Killed shims that did not end in time keep their (quiet) records. */
            c->step = CLEAN_CGROUPS;
            c->deadline = now + CLEANUP_WAIT_MS;
        }
        if (c->step == CLEAN_CGROUPS) {
            size_t left = cg_group_try_remove(b, c->group_id);
            if (left && now < c->deadline) {
                arm(c, CG_RETRY_MS);
                break;
            }
            if (left) {
                char *text = jg_xasprintf("%zu cgroup(s) of the group still hold processes "
                                          "after %d ms; left in place under %s", left,
                                          CLEANUP_WAIT_MS, b->cg_base);
                jg_log("warn", "group %" PRId64 ": %s", c->group_id, text);
                note_problem(c, text);
                free(text);
            }
            c->step = CLEAN_HUB;
            c->deadline = now + CLEANUP_WAIT_MS;
            if (kill_keeper(c) && !c->hub_dead) {
                arm(c, CLEANUP_WAIT_MS);
                break;
            }
        }
        if (c->step == CLEAN_HUB) {
            if (c->hub.pidfd >= 0 && !c->hub_dead && now < c->deadline)
                break;      /* woken before the keeper ended: still waiting */
            if (c->hub.pidfd >= 0)
                reap_keeper(c);
            clean_files(c);
            int64_t group_id = c->group_id;
            bool report = c->report;
            char *problem = c->problem;
            c->problem = NULL;
            cleanup_free(c);
            cleanup_done(b, group_id, report, problem);
            free(problem);
            return;
        }
    }
    c->advancing = false;
}

/* node_dead() freed the record of a node of this group: the cleanup waiting
 * for it may go on. */
void cleanup_node_gone(local_t *b, int64_t group_id)
{
    cleanup_t *c = cleanup_find(b, group_id);
    if (c && c->step == CLEAN_SHIMS && !shims_left(b, group_id))
        cleanup_advance(c);
}

void cleanup_start(local_t *b, int64_t group_id, bool report)
{
    cleanup_t *c = cleanup_find(b, group_id);
    if (c) {
        c->report = c->report || report;
        return;
    }
    c = jg_xcalloc(1, sizeof *c);
    c->b = b;
    c->group_id = group_id;
    c->report = report;
    c->step = CLEAN_SHIMS;
    c->deadline = jg_now_mono_ms() + CLEANUP_WAIT_MS;
    c->hub.pidfd = -1;
    c->hub.ready_fd = -1;
    c->next = b->cleanups;
    b->cleanups = c;

    launches_drop(b, group_id);
    /* Kill every live node of the group; their ends come as pidfd events. */
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id == group_id) {
            n->quiet = true;
            kill_node_tree(b, n->pid, n->start);
        }
    }
    /* The shims nobody follows (the daemon restarted in between), from our
     * own record; their cgroups go next, with anything that left them. */
    char *gdir = group_dir(b, group_id);
    kill_recorded_shims(b, gdir);
    char *record = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    if (unlink(record) < 0 && errno != ENOENT) {
        char *text = jg_xasprintf("cannot remove %s: %s", record, strerror(errno));
        note_problem(c, text);
        free(text);
    }
    free(record);
    free(gdir);
    cleanup_advance(c);
}

int local_cleanup(jg_backend_t *base, int64_t group_id, jg_error_t *err)
{
    (void)err;      /* whatever goes wrong is said with CLEANED */
    cleanup_start(base->impl, group_id, true);
    return 0;
}

size_t jg_backend_local_cleanups_pending(const jg_backend_t *base)
{
    const local_t *b = base->impl;
    size_t n = 0;
    for (const cleanup_t *c = b->cleanups; c; c = c->next)
        n++;
    return n;
}
