/* backends/local/status.c - node records, and what a node says: its status file, its shim's
 * pidfd, inotify.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>

static void parse_status_line(node_t *n, char *line)
{
    char *end;
    long att = strtol(line, &end, 10);
    if (end == line || *end != ' ' || att != n->attempt)
        return;
    char *verb = end + 1;
    if (strncmp(verb, "started", 7) == 0) {
        n->seen_started = true;
    } else if (strcmp(verb, "setup_done") == 0) {
        n->setup_done = true;
    } else if (strcmp(verb, "running") == 0) {
        n->released = true;
    } else if (strcmp(verb, "cancelled") == 0) {
        if (!n->exited)
            n->cancelled = true;
    } else if (strncmp(verb, "exit ", 5) == 0 && !n->exited && !n->cancelled) {
        char phase[8];
        int code, sig;
        if (sscanf(verb + 5, "%7s %d %d", phase, &code, &sig) == 3) {
            n->exited = true;
            n->exit_in_setup = strcmp(phase, "setup") == 0;
            n->exit_code = code;
            n->exit_signal = sig;
        }
    }
}

/* Reads the status lines appended since the last call (whole lines only).
 * The file is the node's user's: what it says can change no more than what
 * is reported for this node, never which process is signalled; it is read
 * without blocking and at most STATUS_MAX bytes of it, so a huge or endless
 * file costs the loop nothing. */
void read_status(node_t *n)
{
    jg_error_t err;
    int fd = open_node_file(n->dir, JG_SHIM_STATUS, O_RDONLY, 0, NULL, &err);
    if (fd < 0) {
        if (errno != ENOENT && !n->status_refused) {
            n->status_refused = true;       /* once: the user may provoke it at will */
            jg_log("warn", "group %" PRId64 ": %s", n->group_id, err.text);
        }
        return;
    }
    char buf[4096];
    size_t have = 0;
    for (;;) {
        size_t want = sizeof buf - have;
        if (n->offset + (off_t)have >= STATUS_MAX)
            break;
        if ((off_t)want > STATUS_MAX - n->offset - (off_t)have)
            want = (size_t)(STATUS_MAX - n->offset - (off_t)have);
        ssize_t r = pread(fd, buf + have, want, n->offset + (off_t)have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        size_t used = 0;
        char *nl;
        while ((nl = memchr(buf + used, '\n', have - used))) {
            *nl = '\0';
            parse_status_line(n, buf + used);
            used = (size_t)(nl - buf) + 1;
        }
        if (used == 0 && have == sizeof buf)
            used = have;        /* a line longer than any we write: skip it */
        n->offset += (off_t)used;
        memmove(buf, buf + used, have - used);
        have -= used;
    }
    close(fd);
}

/* Reports what the status says and was not reported yet.  replay: after a
 * restart, SETUP_DONE is left out for a node already released (the core saw
 * it before it released the barrier). */
void report(node_t *n, bool replay)
{
    if (n->quiet)
        return;
    if (n->setup_done && !n->reported_setup_done) {
        n->reported_setup_done = true;
        if (!(replay && n->released))
            node_event(n, JG_BACKEND_SETUP_DONE, NULL, false, 0, 0);
    }
    /* The end waits for the shim's: status is the user's to write, and what a
     * final event frees (the node's GPUs, its share of the capacity) may go
     * to others only once the node's processes are gone. */
    if (n->reported_final || !n->shim_gone)
        return;
    if (n->exited) {
        char oom[128] = "";
        if (n->exit_code != 0)
            oom_note(n, oom, sizeof oom);
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_EXITED, oom[0] ? oom : NULL, n->exit_in_setup,
                   n->exit_code, n->exit_signal);
    } else if (n->cancelled) {
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_EXITED, NULL, false, 128 + SIGTERM, SIGTERM);
    }
}

void node_free(local_t *b, node_t *n)
{
    for (node_t **pp = &b->nodes; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    if (n->pidfd >= 0) {
        jg_loop_del_fd(b->loop, n->pidfd);
        close(n->pidfd);
    }
    if (n->wd >= 0) {
        bool shared = false;
        for (node_t *o = b->nodes; o; o = o->next)
            if (o->wd == n->wd)
                shared = true;
        if (!shared)
            inotify_rm_watch(b->inotify_fd, n->wd);
    }
    if (n->errfd >= 0)
        close(n->errfd);
    stream_close(n);
    node_put_gpus(n);
    free(n->cgroup);
    free(n->lost_reason);
    free(n->dir);
    free(n);
}

/* What the node's child wrote before it died without exec'ing the shim
 * (netns setup, credentials); "" if nothing. */
static void child_error(node_t *n, char *buf, size_t len)
{
    buf[0] = '\0';
    if (n->errfd < 0)
        return;
    ssize_t r;
    while ((r = read(n->errfd, buf, len - 1)) < 0 && errno == EINTR)
        ;
    buf[r > 0 ? r : 0] = '\0';
}

/* The shim is gone: kill what is left of its process group (before reaping,
 * so the group id cannot have been reused), reap it, read its last lines and
 * report; a shim that recorded no exit was killed from outside. */
void node_dead(local_t *b, node_t *n)
{
    /* A shim we reattached to is reaped by init, not us: in the moment between
     * its death and this kill, the group id could in theory have been reused;
     * members still alive keep it reserved, which is the case that matters. */
    (void)jg_proc_kill(-n->pid, SIGKILL);
    n->shim_gone = true;
    stream_drain(n);        /* its output reaches the core before its end */
    char why[160] = "";
    siginfo_t si = {0};
    if (waitid(P_PIDFD, (id_t)n->pidfd, &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) {
        if (si.si_code == CLD_EXITED)
            snprintf(why, sizeof why, " with status %d", si.si_status);
        else
            snprintf(why, sizeof why, " by signal %d", si.si_status);
    }
    read_status(n);
    report(n, false);
    char child_err[512];
    if (!n->seen_started && !n->reported_final && !n->quiet)
        child_error(n, child_err, sizeof child_err);
    else
        child_err[0] = '\0';
    if (child_err[0]) {
        n->reported_final = true;
        node_event(n, JG_BACKEND_LAUNCH_FAILED, child_err, false, 0, 0);
    } else if (!n->reported_final && !n->quiet && n->lost_reason) {
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_LOST, n->lost_reason, false, 0, 0);
    } else if (!n->reported_final && !n->quiet && n->stopping) {
        /* Forced at the end of stop()'s grace: the shim went with its node. */
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_EXITED, NULL, !n->setup_done, 128 + SIGKILL, SIGKILL);
    } else if (!n->reported_final && !n->quiet) {
        char *reason, oom[128];
        oom_note(n, oom, sizeof oom);
        if (!n->seen_started)
            reason = jg_xasprintf("node could not start (shim pid %d ended%s before "
                                  "recording anything; see the daemon's log)",
                                  (int)n->pid, why);
        else
            reason = jg_xasprintf("node process tree was killed (shim pid %d died%s "
                                  "without recording an exit)%s%s",
                                  (int)n->pid, why, oom[0] ? ": " : "", oom);
        n->reported_final = true;
        node_event(n, JG_BACKEND_NODE_LOST, reason, false, 0, 0);
        free(reason);
    }
    /* The node is over: so is whatever is left in its cgroup (a process that
     * left its process group, when nodes share the host network). */
    if (n->cgroup)
        (void)cg_node_remove(n->cgroup);
    int64_t group_id = n->group_id;
    bool cleaned_up = n->quiet;
    node_free(b, n);
    if (cleaned_up)
        cleanup_node_gone(b, group_id);     /* its cleanup may have waited for this */
}

void on_pidfd(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    node_t *n = arg;
    local_t *b = n->b;
    node_dead(b, n);
    flush_events(b);
}

void on_inotify(jg_loop_t *loop, int fd, uint32_t revents, void *arg)
{
    (void)loop;
    (void)revents;
    local_t *b = arg;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len < 0 && errno == EINTR)
            continue;
        if (len <= 0)
            break;
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ie = (const struct inotify_event *)p;
            for (node_t *n = b->nodes; n; n = n->next) {
                if (ie->wd == n->wd || (ie->mask & IN_Q_OVERFLOW)) {
                    read_status(n);
                    report(n, false);
                }
            }
            p += sizeof *ie + ie->len;
        }
    }
    flush_events(b);
}

node_t *node_new(local_t *b, int64_t group_id, int job_index, int rank, int attempt,
                 const char *dir)
{
    node_t *n = jg_xcalloc(1, sizeof *n);
    n->b = b;
    n->group_id = group_id;
    n->job_index = job_index;
    n->rank = rank;
    n->attempt = attempt;
    n->dir = jg_xstrdup(dir);
    n->pidfd = -1;
    n->wd = -1;
    n->errfd = -1;
    n->stream.fd = -1;
    return n;
}

void node_link(local_t *b, node_t *n)
{
    for (node_t *o = b->nodes; o; o = o->next)
        if (o->group_id == n->group_id && o->job_index == n->job_index && o->rank == n->rank)
            o->superseded = true;
    n->next = b->nodes;
    b->nodes = n;
    stream_arm(b, 0);
}
