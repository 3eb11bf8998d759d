/* backends/local/stop.c - release (the barrier) and stop.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static int write_fifo(const node_t *n, char c, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/%s", n->dir, JG_SHIM_RELEASE);
    /* The node's user may have put a link or a file of someone else's there:
     * only the FIFO itself, with no other name, gets the byte. */
    int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    int rc = 0;
    if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode) || st.st_nlink != 1))
        rc = jg_errprintf(err, "refusing %s: it is not the node's FIFO", path);
    else if (fd < 0 || write(fd, &c, 1) != 1)
        rc = jg_errprintf(err, "cannot write to %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

int local_release(jg_backend_t *base, int64_t group_id, jg_error_t *err)
{
    local_t *b = base->impl;
    int rc = 0;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id != group_id || n->superseded || n->quiet || !n->reported_setup_done ||
            n->released || n->reported_final)
            continue;
        jg_error_t e;
        if (write_fifo(n, JG_SHIM_RELEASE_RUN, &e) < 0) {
            if (rc == 0)
                rc = jg_errprintf(err, "release of group %" PRId64 ": %s", group_id, e.text);
            continue;
        }
        n->released = true;
    }
    return rc;
}

static bool matches(const node_t *n, int64_t group_id, int job_index, int rank)
{
    return n->group_id == group_id && (job_index < 0 || n->job_index == job_index) &&
           (rank < 0 || n->rank == rank);
}

static void on_stop_timer(jg_loop_t *loop, void *arg)
{
    (void)loop;
    stop_timer_t *t = arg;
    local_t *b = t->b;
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->stopping && matches(n, t->group_id, t->job_index, t->rank))
            kill_node_tree(b, n->pid, n->start);
    for (stop_timer_t **pp = &b->stops; *pp; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    free(t);
}

static void stop_wait_add(local_t *b, int64_t group_id, int job_index, int rank);

int local_stop(jg_backend_t *base, int64_t group_id, int job_index, int rank,
               int grace_ms, jg_error_t *err)
{
    (void)err;
    local_t *b = base->impl;
    bool any = false;
    launches_finish(b, group_id);       /* its queued nodes are stopped like the others */
    for (node_t *n = b->nodes; n; n = n->next) {
        if (!matches(n, group_id, job_index, rank))
            continue;
        any = true;
        n->stopping = true;
        if (grace_ms > 0)
            (void)jg_proc_kill(-n->pid, SIGTERM);
        else
            kill_node_tree(b, n->pid, n->start);
        if (!n->superseded && !n->released)
            write_fifo(n, JG_SHIM_RELEASE_CANCEL, NULL);
    }
    stop_wait_add(b, group_id, job_index, rank);
    if (any && grace_ms > 0) {
        stop_timer_t *t = jg_xcalloc(1, sizeof *t);
        t->b = b;
        t->group_id = group_id;
        t->job_index = job_index;
        t->rank = rank;
        t->id = jg_loop_add_timer(b->loop, grace_ms, on_stop_timer, t);
        t->next = b->stops;
        b->stops = t;
    }
    return 0;
}

/* ---- STOPPED ---------------------------------------------------------------
 *
 * Each stop() is remembered until every node it targeted has reported its
 * end (or cleanup() silenced it); then one STOPPED is queued for it. */

struct stop_wait {
    stop_wait_t *next;
    int64_t group_id;
    int job_index;
    int rank;
};

void stop_wait_free(local_t *b, stop_wait_t *w)
{
    for (stop_wait_t **pp = &b->stop_waits; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    free(w);
}

void stop_waits_check(local_t *b)
{
    for (stop_wait_t *w = b->stop_waits, *next; w; w = next) {
        next = w->next;
        bool live = false;
        for (node_t *n = b->nodes; n && !live; n = n->next)
            live = matches(n, w->group_id, w->job_index, w->rank) && !n->reported_final &&
                   !n->quiet;
        if (live)
            continue;
        queue_event(b, JG_BACKEND_STOPPED, w->group_id, w->job_index, w->rank, 0, NULL, NULL,
                    false, 0, 0);
        stop_wait_free(b, w);
    }
}

static void stop_wait_add(local_t *b, int64_t group_id, int job_index, int rank)
{
    stop_wait_t *w = jg_xcalloc(1, sizeof *w);
    *w = (stop_wait_t){.next = b->stop_waits, .group_id = group_id, .job_index = job_index,
                       .rank = rank};
    b->stop_waits = w;
    stop_waits_check(b);        /* nothing left to stop: STOPPED at once (queued) */
}
