/* backends/local/backend.c - the `local` backend: every node is a process tree on this host.
 *
 * A node is a directory, <state_dir>/groups/<group id>/<job>-<rank>/, and a
 * jgsched-shim process started in a session of its own that runs the node's
 * setup, waits at the barrier (a FIFO) and runs its run command (shim.c;
 * shim_protocol.h lists the files).  The shim appends every step to the
 * node's `status` file, which is the durable truth of what happened: the
 * daemon may die and come back, read the file again from the start
 * (reattach) and lose nothing.
 *
 * Run as root, the backend trusts nothing in a node directory: it belongs to
 * the node's user, and so does the shim.  Which processes are the node's
 * comes from the daemon's own records only: the fork (pid, pidfd, start
 * time), the store's handle, the root-owned <group dir>/.shims, the node's
 * cgroup.  Every signal goes through jg_proc_kill.  Files in a node directory
 * are opened by open_node_file (no link followed, no blocking open, regular
 * files only) or made fresh with O_EXCL; its tmp/ through a directory fd.
 *
 * Real-time notice without polling: ONE inotify descriptor for the backend
 * watches every node's status file (IN_MODIFY), and one pidfd per shim says
 * when it died.  On either, the node's new status lines are read from the
 * stored offset and turned into events by comparing what the file says with
 * what was already reported (so a replay after a restart and a live update
 * go through the same code).  A shim that died without recording an exit was
 * killed from outside: NODE_LOST, and whatever is left of its process group
 * is killed, since nothing supervises it any more.
 *
 * Events never reach the core from inside an operation: they are queued and
 * delivered from the loop (a zero-delay timer, or the end of the descriptor
 * callback that produced them), so sched is never re-entered from its own
 * call to launch() or reattach(), and may call any operation (but not
 * destroy) from its event callback.
 *
 * A node record lives from launch (or reattach) until its shim is seen dead;
 * a relaunch of the same node (a new attempt) adds a new record and marks the
 * old one superseded: its late lines carry the old attempt and are ignored by
 * sched.  Files are replaced by rename (a bash still reading the old script
 * keeps its inode) and the FIFO is recreated, so the old shim can never see
 * the new attempt's release.
 *
 * Networking (netns.c does the kernel work; docs/local-backend.md explains):
 * at its first launch a group gets a hub, a network namespace with a bridge
 * held by a keeper process recorded in <group dir>/net; each node's forked
 * child joins it, making the node's own network, UTS and mount namespaces
 * (address, hostname, the group's <group dir>/hosts on /etc/hosts, the node's
 * <node dir>/tmp on /tmp) before it execs the shim.  A failure there reaches
 * the backend through a close-on-exec pipe and is reported as LAUNCH_FAILED.
 * The node's namespaces live as long as its processes; the hub until
 * cleanup() kills the keeper.  A keeper that dies on its own takes the
 * group's network with it: the group's nodes are killed and reported lost.
 * Where namespaces are not possible (see jg_netns_probe) nodes share the
 * host network, which warning() and every node's log say.
 *
 * Resources (docs/local-backend.md, "Resources"):
 *  - Volumes are bind mounts made by the node's child in the node's mount
 *    namespace (netns.c).  A mount point missing on the host is made first
 *    by a child that became the node's user (host_mount_point), so root
 *    never makes a directory where the user could not, and it is left in
 *    place: another group's or instance's node may have it mounted.
 *  - Deleting: a node's work and tmp trees are moved into <state_dir>/trash
 *    and deleted there by a background child through directory descriptors,
 *    as their owner (fsutil.h): never a full path into a tree the user can
 *    change, never on the loop.
 *  - Output: each node's output.log is opened once and read on a timer into
 *    LOG events, drained before the node's end is reported (logs.c).
 *    cleanup() queues CLEANED at its end (cleanup.c), and every stop() one
 *    STOPPED once its nodes have ended (stop.c).
 *  - GPUs: a jg_gpu_pool_t of the host's GPUs (nvidia-smi's index and name,
 *    read once at create).  A node takes its job's count at launch and keeps
 *    them until its final event (or its record goes); the indices are written
 *    to <node dir>/gpus so a restarted daemon takes the same ones back.
 *  - cgroups: probed once at create (a cgroup v2 mount whose controllers
 *    include cpu and memory, and a place in it we may divide); then each
 *    attempt of a node gets <instance cgroup>/g<id>-<job>-<rank>.<attempt>
 *    with cpu.max and memory.max, joined by the node's child before it execs
 *    the shim.  memory.events says whether the OOM killer struck; the cgroup
 *    is killed (cgroup.kill) and removed when the node ends and at cleanup.
 *
 * This file: the ops table, create and destroy, and the queue that delivers
 * events from the loop; local_int.h says where the rest lives.
 */
#include "local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

static const jg_backend_ops_t local_ops;

void flush_events(local_t *b)
{
    if (b->flushing)
        return;
    b->flushing = true;
    while (b->q_head < b->q_len) {
        queued_t q = b->queue[b->q_head++];
        q.ev.reason = q.reason;
        q.ev.handle = q.handle;
        q.ev.address = q.address;
        q.ev.data = q.data;
        b->on_event(b->event_ctx, &q.ev);
        free(q.reason);
        free(q.handle);
        free(q.address);
        free(q.data);
    }
    b->q_head = b->q_len = 0;
    b->flushing = false;
}

static void on_flush_timer(jg_loop_t *loop, void *arg)
{
    (void)loop;
    local_t *b = arg;
    b->flush_timer = 0;
    flush_events(b);
}

/* Queues an event; it reaches the core from the loop, never from inside the
 * operation that produced it.  Returns the entry, valid until the next call,
 * for fields only some events carry (a node's address). */
queued_t *queue_event(local_t *b, jg_backend_event_type_t type, int64_t group_id,
                 int job_index, int rank, int attempt, const char *reason,
                 const char *handle, bool in_setup, int code, int sig)
{
    if (b->q_len == b->q_cap) {
        if (b->q_head > 0) {
            memmove(b->queue, b->queue + b->q_head, (b->q_len - b->q_head) * sizeof *b->queue);
            b->q_len -= b->q_head;
            b->q_head = 0;
        }
        if (b->q_len == b->q_cap) {
            b->q_cap = b->q_cap ? b->q_cap * 2 : 32;
            b->queue = jg_xrealloc(b->queue, b->q_cap * sizeof *b->queue);
        }
    }
    b->queue[b->q_len++] = (queued_t){
        .ev = {.type = type, .group_id = group_id, .job_index = job_index, .rank = rank,
               .attempt = attempt, .in_setup = in_setup, .exit_code = code, .signal = sig},
        .reason = jg_xstrdup(reason),
        .handle = jg_xstrdup(handle),
    };
    if (!b->flush_timer && !b->flushing)
        b->flush_timer = jg_loop_add_timer(b->loop, 0, on_flush_timer, b);
    return &b->queue[b->q_len - 1];
}

void node_event(node_t *n, jg_backend_event_type_t type, const char *reason,
                bool in_setup, int code, int sig)
{
    if (type == JG_BACKEND_NODE_EXITED || type == JG_BACKEND_NODE_LOST ||
        type == JG_BACKEND_LAUNCH_FAILED)
        node_put_gpus(n);       /* free for the next node the moment this one is over */
    queue_event(n->b, type, n->group_id, n->job_index, n->rank, n->attempt, reason, NULL,
                in_setup, code, sig);
    if (type == JG_BACKEND_NODE_EXITED || type == JG_BACKEND_NODE_LOST ||
        type == JG_BACKEND_LAUNCH_FAILED)
        stop_waits_check(n->b);
}

static const char *local_warning(jg_backend_t *base)
{
    local_t *b = base->impl;
    return b->warning;
}

static const char *local_notes(jg_backend_t *base)
{
    local_t *b = base->impl;
    return b->notes;
}

/* notes(): how nodes are held to their resources, one line. */
static char *make_notes(const local_t *b, const char *cg_why)
{
    char *cg = b->cg_base ? jg_xasprintf("cgroups: v2, a cgroup per node under %s (cpu.max "
                                         "from its cpus, memory.max from its memory)",
                                         b->cg_base)
                          : jg_xasprintf("cgroups: unavailable (%s); nodes are not limited",
                                         cg_why);
    char *gpus;
    if (b->gpus_known) {
        char types[256] = "";
        size_t off = 0;
        for (size_t i = 0; i < b->gpus->n && off < sizeof types; i++) {
            bool seen = false;
            for (size_t k = 0; k < i; k++)
                seen = seen || strcasecmp(b->gpus->v[k].name, b->gpus->v[i].name) == 0;
            if (!seen)
                off += (size_t)snprintf(types + off, sizeof types - off, "%s%s x%zu",
                                        off ? ", " : "", b->gpus->v[i].name,
                                        jg_gpu_pool_count(b->gpus, b->gpus->v[i].name, false));
        }
        gpus = jg_xasprintf("GPUs: %s, handed out by index (CUDA_VISIBLE_DEVICES)", types);
    } else if (b->capacity.n_accels) {
        gpus = jg_xasprintf("GPUs: declared in the config, but no index is known (%s): nodes "
                            "get no CUDA_VISIBLE_DEVICES", b->gpus_why);
    } else {
        gpus = jg_xasprintf("GPUs: none (%s)", b->gpus_why);
    }
    char *notes = jg_xasprintf("%s; %s; %s", cg, gpus, b->nat_note);
    free(cg);
    free(gpus);
    return notes;
}

static void local_destroy(jg_backend_t *base)
{
    if (!base)
        return;
    local_t *b = base->impl;
    jg_capacity_clear(&b->capacity);
    /* Nodes and hubs keep running: the daemon may be restarting and will reattach.
     * A cleanup midway stops here (its nodes were killed; sweep() finishes it). */
    cleanups_free(b);
    launches_free(b);
    while (b->nodes)
        node_free(b, b->nodes);     /* before the GPU pool they return to goes */
    jg_gpu_pool_destroy(b->gpus);
    free(b->cg_base);
    free(b->nat_note);
    free(b->notes);
    while (b->gnets)
        gnet_free(b, b->gnets, false, NULL);
    while (b->stops) {
        stop_timer_t *t = b->stops;
        b->stops = t->next;
        jg_loop_cancel_timer(b->loop, t->id);
        free(t);
    }
    if (b->flush_timer)
        jg_loop_cancel_timer(b->loop, b->flush_timer);
    if (b->stream_timer)
        jg_loop_cancel_timer(b->loop, b->stream_timer);
    while (b->stop_waits)
        stop_wait_free(b, b->stop_waits);
    for (size_t i = b->q_head; i < b->q_len; i++) {
        free(b->queue[i].reason);
        free(b->queue[i].handle);
        free(b->queue[i].address);
        free(b->queue[i].data);
    }
    free(b->queue);
    if (b->inotify_fd >= 0) {
        jg_loop_del_fd(b->loop, b->inotify_fd);
        close(b->inotify_fd);
    }
    if (b->shim_fd >= 0)
        close(b->shim_fd);
    if (b->keeper_fd >= 0)
        close(b->keeper_fd);
    free(b->keeper_path);
    jg_trash_close(b->trash);
    free(b->state_dir);
    free(b->shim_path);
    free(b->warning);
    free(b->base.name);
    free(b);
}

/* An executable's absolute path: as given when it names a file, else from
 * $PATH.  NULL if no executable is found. */
char *resolve_exec(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    if (!path)
        return NULL;
    char *copy = jg_xstrdup(path), *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *cand = jg_xasprintf("%s/%s", dir, name);
        if (access(cand, X_OK) == 0)
            found = realpath(cand, NULL);
        free(cand);
    }
    free(copy);
    return found;
}

/* A helper program installed next to the shim (jgsched-keeper,
 * jgsched-deleter). */
static char *beside_shim(const local_t *b, const char *name)
{
    const char *slash = strrchr(b->shim_path, '/');
    return jg_xasprintf("%.*s/%s", (int)(slash ? slash - b->shim_path : 1),
                        slash ? b->shim_path : ".", name);
}

/* The hubs' keeper, jgsched-keeper: opened once, started through its
 * descriptor (never a path swapped since). */
static int open_keeper(local_t *b, jg_error_t *err)
{
    b->keeper_path = beside_shim(b, "jgsched-keeper");
    b->keeper_fd = open(b->keeper_path, O_PATH | O_CLOEXEC);
    if (b->keeper_fd < 0)
        return jg_errprintf(err, "local backend: cannot open %s, the keeper of isolated groups' "
                            "networks (it is installed next to %s): %s", b->keeper_path,
                            b->shim_path, strerror(errno));
    return 0;
}

jg_backend_t *jg_backend_local_create(const jg_local_config_t *cfg, jg_error_t *err)
{
    local_t *b = NULL;
    char *groups = NULL;
    if (!cfg || !cfg->state_dir || !cfg->shim_path || !cfg->loop || !cfg->on_event) {
        jg_errprintf(err, "local backend: incomplete configuration");
        goto fail;
    }
    groups = jg_xasprintf("%s/groups", cfg->state_dir);
    if (jg_mkdir_p(groups, 0711, err) < 0)
        goto fail;
    b = jg_xcalloc(1, sizeof *b);
    b->base.ops = &local_ops;
    b->base.impl = b;
    b->base.name = jg_xstrdup("local");
    b->inotify_fd = -1;
    b->shim_fd = -1;
    b->keeper_fd = -1;
    b->state_dir = realpath(cfg->state_dir, NULL);
    if (!b->state_dir) {
        jg_errprintf(err, "local backend: cannot resolve %s: %s", cfg->state_dir,
                     strerror(errno));
        goto fail;
    }
    b->shim_path = resolve_exec(cfg->shim_path);
    if (!b->shim_path) {
        jg_errprintf(err, "local backend: cannot find an executable shim at %s (build "
                     "jgsched-shim, or point JGSCHED_SHIM at it)", cfg->shim_path);
        goto fail;
    }
    b->shim_fd = open(b->shim_path, O_PATH | O_CLOEXEC);
    if (b->shim_fd < 0) {
        jg_errprintf(err, "local backend: cannot open %s: %s", b->shim_path, strerror(errno));
        goto fail;
    }
    b->loop = cfg->loop;
    char *trash = jg_xasprintf("%s/%s", b->state_dir, TRASH_DIR);
    char *deleter = beside_shim(b, "jgsched-deleter");
    b->trash = jg_trash_create(trash, deleter, b->loop);
    free(deleter);
    free(trash);
    b->on_event = cfg->on_event;
    b->event_ctx = cfg->event_ctx;
    b->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (b->inotify_fd < 0) {
        jg_errprintf(err, "local backend: inotify_init1: %s", strerror(errno));
        goto fail;
    }
    if (jg_loop_add_fd(b->loop, b->inotify_fd, EPOLLIN, on_inotify, b, err) < 0) {
        close(b->inotify_fd);
        b->inotify_fd = -1;
        goto fail;
    }

    /* What nodes get, decided once: nothing in the core depends on it. */
    jg_netns_probe(&b->net);
    if (cfg->share_host_network) {
        /* Root still gives every node its hostname, /etc/hosts and /tmp. */
        b->net.own_mounts = b->net.mode == JG_NETNS_ROOT;
        b->net.mode = JG_NETNS_HOST;
        b->warning = jg_xasprintf("network isolation is off by configuration: nodes share the "
                                  "host network, %s and two nodes cannot listen on the same "
                                  "port", b->net.own_mounts ? "every hostname resolves to "
                                  "127.0.0.1" : "hostnames do not resolve");
    } else {
        if (b->net.mode == JG_NETNS_HOST && b->net.own_mounts)
            b->warning = jg_xasprintf("nodes share the host network (%s): every hostname "
                                      "resolves to 127.0.0.1 and two nodes cannot listen on "
                                      "the same port", b->net.why);
        else if (b->net.mode == JG_NETNS_HOST)
            b->warning = jg_xasprintf("nodes share the host network and its /etc/hosts (%s): "
                                      "hostnames do not resolve and two nodes cannot listen "
                                      "on the same port", b->net.why);
    }
    if (b->warning)
        jg_log("warn", "local backend: %s", b->warning);
    if (isolated(b) && open_keeper(b, err) < 0)
        goto fail;
    if (setup_nat(b, cfg, err) < 0)
        goto fail;
    if (cfg->capacity) {
        jg_capacity_copy(&b->capacity, cfg->capacity);
    } else {
        jg_capacity_detect_host(&b->capacity);
    }
    detect_gpus(b);
    if (!cfg->capacity || cfg->host_gpus)
        add_pool_to_capacity(b);
    describe_host_node(b);
    char cg_why[320] = "";
    struct stat cst;
    if (cfg->cgroups_off)
        snprintf(cg_why, sizeof cg_why, "off by configuration (backends.local.cgroups)");
    else if (cfg->cgroup_dir && stat(cfg->cgroup_dir, &cst) == 0 && S_ISDIR(cst.st_mode))
        b->cg_base = jg_xstrdup(cfg->cgroup_dir);
    else if (cfg->cgroup_dir)
        snprintf(cg_why, sizeof cg_why, "the configured cgroup %s is not a directory",
                 cfg->cgroup_dir);
    else
        cg_probe(b, cg_why, sizeof cg_why);
    b->notes = make_notes(b, cg_why);
    jg_log("info", "local backend: %s", b->notes);
    free(groups);
    return &b->base;
fail:
    free(groups);
    if (b)
        local_destroy(&b->base);
    return NULL;
}

static const jg_capacity_t *local_capacity(jg_backend_t *base)
{
    local_t *b = base->impl;
    return &b->capacity;
}

/* The host is one node: a job whose node is larger than the host (its
 * max_node) never fits; a group fits now when it fits in what is free. */
jg_fit_t local_fit(jg_backend_t *base, const jg_group_spec_t *spec, const jg_usage_t *held,
                   char *why, size_t len)
{
    local_t *b = base->impl;
    const jg_capacity_t *cap = &b->capacity;
    for (size_t i = 0; i < spec->n_jobs; i++)
        if (!jg_capacity_node_fits(cap, base->name, &spec->jobs[i], why, len))
            return JG_FIT_NEVER;
    jg_usage_t idle = {0};
    char short_of[256];
    if (!jg_usage_group_fits(&idle, cap, spec, short_of, sizeof short_of)) {
        static const char prefix[] = "waiting for resources: ";
        const char *need = strncmp(short_of, prefix, sizeof prefix - 1) == 0
                               ? short_of + sizeof prefix - 1 : short_of;
        snprintf(why, len, "group %s can never start: even on an idle infra %s it %s",
                 spec->name, base->name, need);
        return JG_FIT_NEVER;
    }
    jg_usage_t none = {0};
    return jg_usage_group_fits(held ? held : &none, cap, spec, why, len) ? JG_FIT_NOW
                                                                          : JG_FIT_NOT_NOW;
}

/* capacity() describes the host as the one node it is. */
void describe_host_node(local_t *b)
{
    jg_capacity_t *cap = &b->capacity;
    cap->reachable = true;
    cap->nodes = jg_xcalloc(1, sizeof *cap->nodes);
    cap->n_nodes = 1;
    cap->nodes[0] = (jg_capacity_node_t){.name = jg_xstrdup("localhost"),
                                         .cpus = cap->max_node_cpus,
                                         .memory_gb = cap->max_node_memory_gb};
    jg_accel_t *accels = cap->n_accels ? jg_xcalloc(cap->n_accels, sizeof *accels) : NULL;
    for (size_t i = 0; i < cap->n_accels; i++)
        accels[i] = (jg_accel_t){.name = jg_xstrdup(cap->accels[i].name),
                                 .count = cap->accels[i].count};
    cap->nodes[0].accels = accels;
    cap->nodes[0].n_accels = cap->n_accels;
}

static const jg_backend_ops_t local_ops = {
    .kind = "local",
    .fit = local_fit,
    .capacity = local_capacity,
    .launch = local_launch,
    .release = local_release,
    .stop = local_stop,
    .reattach = local_reattach,
    .cleanup = local_cleanup,
    .sweep = local_sweep,
    .warning = local_warning,
    .notes = local_notes,
    .destroy = local_destroy,
};
