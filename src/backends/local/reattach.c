/* backends/local/reattach.c - reattach after a daemon restart, and sweep of what dead groups left.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_protocol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Follows the hub of a group whose nodes run again; if its keeper died
 * while nobody watched, the nodes have no network left: they are lost. */
static void reattach_network(local_t *b, int64_t group_id)
{
    bool any = false;
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->group_id == group_id && !n->reported_final)
            any = true;
    pid_t pid;
    unsigned long long start;
    if (!any || !isolated(b) || gnet_find(b, group_id) ||
        read_net_file(b, group_id, &pid, &start) < 0)
        return;
    jg_netns_hub_t hub;
    jg_error_t e;
    if (jg_netns_hub_open(pid, start, &hub, &e) == 0 && gnet_watch(b, group_id, &hub, &e))
        return;
    char *reason = jg_xasprintf("the group's network is gone (%s)", e.text);
    lose_group_nodes(b, group_id, reason);
    free(reason);
}

/* A node found again: its cgroup, and (while it runs) the GPUs its attempt
 * was given, from its gpus file. */
static void reattach_resources(local_t *b, node_t *n, int64_t group_id, bool alive)
{
    if (b->cg_base) {
        char *cg = cg_node_path(b, group_id, n->dir, n->attempt);
        struct stat st;
        if (stat(cg, &st) == 0)
            n->cgroup = cg;
        else
            free(cg);
    }
    /* The GPUs our record gave this very shim: the node's own gpus file is
     * its user's, who could name any GPU there. */
    char gpus[sizeof ((shim_rec_t *)0)->gpus] = "";
    if (!alive)
        return;
    char *gdir = group_dir(b, group_id);
    size_t count = 0;
    shim_rec_t *v = read_shim_records(gdir, &count);
    const char *name = strrchr(n->dir, '/');
    for (size_t i = 0; name && i < count; i++)
        if (v[i].attempt == n->attempt && v[i].pid == n->pid && v[i].start == n->start &&
            strcmp(v[i].node, name + 1) == 0)
            snprintf(gpus, sizeof gpus, "%s", v[i].gpus);
    free(v);
    free(gdir);
    int idx[MAX_GPUS_PER_NODE];
    size_t k = 0;
    for (char *p = gpus; k < MAX_GPUS_PER_NODE && *p >= '0' && *p <= '9';) {
        int i = (int)strtol(p, &p, 10);
        if (jg_gpu_pool_claim(b->gpus, i) == 0)
            idx[k++] = i;
        else
            jg_log("warn", "group %" PRId64 ": %s holds GPU %d, which is unknown or taken",
                   group_id, n->dir, i);
        if (*p == ',')
            p++;
    }
    if (k) {
        n->gpus = jg_xmalloc(k * sizeof *n->gpus);
        memcpy(n->gpus, idx, k * sizeof *idx);
        n->n_gpus = k;
    }
}

int local_reattach(jg_backend_t *base, int64_t group_id, const jg_node_handle_t *nodes,
                   size_t n_nodes, jg_error_t *err)
{
    local_t *b = base->impl;
    if (!nodes && n_nodes)
        return jg_errprintf(err, "reattach: no nodes given");
    for (size_t i = 0; i < n_nodes; i++) {
        const jg_node_handle_t *h = &nodes[i];
        bool known = false;
        for (node_t *o = b->nodes; o; o = o->next)
            if (o->group_id == group_id && o->job_index == h->job_index &&
                o->rank == h->rank && o->attempt == h->attempt)
                known = true;
        if (known)
            continue;

        int pid = 0;
        unsigned long long start = 0;
        const char *dir = h->handle ? strstr(h->handle, " dir=") : NULL;
        if (!dir || sscanf(h->handle, "pid=%d start=%llu", &pid, &start) != 2 || pid <= 0 ||
            dir[5] != '/') {
            char *reason = jg_xasprintf("cannot reattach: unreadable node handle \"%s\"",
                                        h->handle ? h->handle : "");
            queue_event(b, JG_BACKEND_NODE_LOST, group_id, h->job_index, h->rank, h->attempt,
                        reason, NULL, false, 0, 0);
            free(reason);
            continue;
        }
        node_t *n = node_new(b, group_id, h->job_index, h->rank, h->attempt, dir + 5);
        n->pid = pid;
        n->start = start;
        n->stream.resume_set = true;        /* what the core already has */
        n->stream.offset = h->log_bytes > 0 ? h->log_bytes : 0;

        /* Open the pidfd first, then check the start time: if it matches, the
         * pidfd is our shim and cannot be confused with a later process. */
        unsigned long long now_start = 0;
        n->pidfd = jg_proc_pidfd_open(pid);
        bool alive = n->pidfd >= 0 && jg_proc_starttime(pid, &now_start) == 0 && now_start == start;
        if (alive) {
            char *status = jg_xasprintf("%s/%s", n->dir, JG_SHIM_STATUS);
            n->wd = inotify_add_watch(b->inotify_fd, status, IN_MODIFY | IN_DONT_FOLLOW);
            free(status);
            if (n->wd < 0 || jg_loop_add_fd(b->loop, n->pidfd, EPOLLIN, on_pidfd, n, NULL) < 0)
                alive = false;
        }
        reattach_resources(b, n, group_id, alive);
        node_link(b, n);
        n->shim_gone = !alive;
        if (!alive)
            stream_drain(n);
        read_status(n);
        report(n, true);
        if (!alive) {
            if (n->pidfd >= 0) {
                close(n->pidfd);
                n->pidfd = -1;
            }
            if (!n->reported_final) {
                char *reason = jg_xasprintf("node process tree is gone (shim pid %d no longer "
                                            "runs and recorded no exit)", pid);
                n->reported_final = true;
                node_event(n, JG_BACKEND_NODE_LOST, reason, false, 0, 0);
                free(reason);
            }
            node_free(b, n);
        }
    }
    reattach_network(b, group_id);
    return 0;
}

/* Whether a group directory (or the instance's cgroup) still holds
 * something cleanup() removes. */
static bool has_leftovers(const local_t *b, int64_t group_id, const char *gdir)
{
    char *net = jg_xasprintf("%s/%s", gdir, GROUP_NET);
    char *mounts = jg_xasprintf("%s/%s", gdir, GROUP_MOUNTS);
    char *shims = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    bool found = access(net, F_OK) == 0 || access(mounts, F_OK) == 0 ||
                 access(shims, F_OK) == 0 || cg_group_exists(b, group_id);
    free(net);
    free(mounts);
    free(shims);
    DIR *d = found ? NULL : opendir(gdir);
    struct dirent *de;
    while (d && !found && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        static const char *const names[] = {JG_SHIM_ENV, JG_SHIM_RELEASE, JG_SHIM_WORK, NODE_TMP};
        for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++) {
            char *path = jg_xasprintf("%s/%s/%s", gdir, de->d_name, names[i]);
            struct stat st;
            found = lstat(path, &st) == 0;
            free(path);
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* Reads at most cap - 1 bytes of a /proc file into buf (NUL-terminated);
 * the length, or -1. */
static ssize_t read_proc_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return (ssize_t)got;
}

/* The group a process keeps the network of, when it is a keeper of this
 * instance: it runs as the daemon's user (every uid), its executable is the
 * very file the backend holds open as its keeper (device and inode), and its
 * argv is exactly "jgsched-keeper MODE NETWORK --hold <state dir>/groups/<id>".
 * All three are the kernel's word, which a user cannot forge: only the
 * daemon's user (root, for a system daemon) can run the keeper as itself.  -1 if it is not one. */
static long long keeper_group(const local_t *b, const struct stat *keeper, long pid)
{
    char path[64], buf[PATH_MAX + 64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%ld/exe", pid);
    if (stat(path, &st) < 0 || st.st_dev != keeper->st_dev || st.st_ino != keeper->st_ino)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if (read_proc_file(path, buf, sizeof buf) < 0)
        return -1;
    const char *uids = strstr(buf, "\nUid:");
    unsigned u[4];
    uid_t me = geteuid();
    if (!uids || sscanf(uids, "\nUid: %u %u %u %u", &u[0], &u[1], &u[2], &u[3]) != 4 ||
        u[0] != me || u[1] != me || u[2] != me || u[3] != me)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    ssize_t n = read_proc_file(path, buf, sizeof buf);
    if (n <= 0 || buf[n - 1] != '\0')
        return -1;
    /* jgsched-keeper MODE NETWORK --hold DIR: exactly five arguments */
    const char *arg = buf;
    for (int i = 0; i < 3 && arg < buf + n; i++)
        arg += strlen(arg) + 1;
    if (arg >= buf + n || strcmp(arg, "--hold") != 0)
        return -1;
    const char *dir = arg + strlen(arg) + 1;
    if (dir >= buf + n || dir + strlen(dir) + 1 != buf + n)
        return -1;
    size_t plen = strlen(b->state_dir);
    if (strncmp(dir, b->state_dir, plen) != 0 || strncmp(dir + plen, "/groups/", 8) != 0)
        return -1;
    const char *digits = dir + plen + 8;
    char *end;
    errno = 0;
    long long id = strtoll(digits, &end, 10);
    if (*digits < '0' || *digits > '9' || *end || errno || id < 0)
        return -1;
    return id;
}

/* Kills the keepers of this instance that neither a followed hub nor a
 * group's net record names: a daemon killed between starting a keeper and
 * recording it (or while cleaning a group up) leaves one that no record will
 * ever lead back to.  Runs at start-up, before any launch of this daemon, so
 * no keeper is between its start and its record meanwhile. */
static int sweep_stray_keepers(local_t *b, jg_error_t *err)
{
    struct stat keeper;
    if (!isolated(b) || fstat(b->keeper_fd, &keeper) < 0)
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return jg_errprintf(err, "sweep: cannot read /proc: %s", strerror(errno));
    int rc = 0;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        unsigned long long start = 0, now = 0;
        if (*end || pid <= 0 || pid == self || jg_proc_starttime((pid_t)pid, &start) < 0)
            continue;
        long long id = keeper_group(b, &keeper, pid);
        if (id < 0)
            continue;
        gnet_t *g = gnet_find(b, (int64_t)id);
        pid_t recorded;
        unsigned long long recorded_start;
        if ((g && g->hub.pid == (pid_t)pid) ||
            (read_net_file(b, (int64_t)id, &recorded, &recorded_start) == 0 &&
             recorded == (pid_t)pid && recorded_start == start))
            continue;
        /* Same start time after the checks: the process checked is the one killed. */
        jg_netns_hub_t hub;
        jg_error_t e;
        if (jg_proc_starttime((pid_t)pid, &now) < 0 || now != start ||
            jg_netns_hub_open((pid_t)pid, start, &hub, NULL) < 0)
            continue;
        jg_log("info", "sweep: killing the network keeper (pid %ld) of group %lld, which no "
               "record names (the daemon died while it was made)", pid, id);
        /* Waits for the SIGKILLed keeper: at start-up, before clients are served. */
        if (jg_netns_hub_destroy(&hub, CLEANUP_WAIT_MS, &e) < 0 && rc == 0)
            rc = jg_errprintf(err, "sweep: %s", e.text);
        /* Nodes found again that were joined to it have lost their network. */
        lose_group_nodes(b, (int64_t)id, "the group's network is gone (the daemon died "
                         "while it was being made)");
    }
    closedir(d);
    return rc;
}

int local_sweep(jg_backend_t *base, const int64_t *live, size_t n_live, jg_error_t *err)
{
    local_t *b = base->impl;
    int rc = sweep_stray_keepers(b, err);
    char *groups = jg_xasprintf("%s/groups", b->state_dir);
    DIR *d = opendir(groups);
    if (!d) {
        if (errno != ENOENT)
            rc = jg_errprintf(err, "sweep: cannot read %s: %s", groups, strerror(errno));
        free(groups);
        return rc;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        errno = 0;
        long long id = strtoll(de->d_name, &end, 10);
        if (de->d_name[0] < '0' || de->d_name[0] > '9' || *end || errno)
            continue;
        bool is_live = false;
        for (size_t i = 0; i < n_live && !is_live; i++)
            is_live = live[i] == (int64_t)id;
        if (is_live)
            continue;
        char *gdir = jg_xasprintf("%s/%s", groups, de->d_name);
        if (has_leftovers(b, (int64_t)id, gdir)) {
            jg_log("info", "sweep: removing what group %lld left behind", id);
            cleanup_start(b, (int64_t)id, false);      /* problems are logged */
        }
        free(gdir);
    }
    closedir(d);
    free(groups);
    /* Node cgroups of groups whose directory is gone altogether (purged). */
    DIR *cgd = b->cg_base ? opendir(b->cg_base) : NULL;
    while (cgd && (de = readdir(cgd))) {
        long long id;
        bool is_live = false;
        if (sscanf(de->d_name, "g%lld-", &id) != 1)
            continue;
        for (size_t i = 0; i < n_live && !is_live; i++)
            is_live = live[i] == (int64_t)id;
        if (!is_live)       /* removed from the loop, like any cleanup */
            cleanup_start(b, (int64_t)id, false);
    }
    if (cgd)
        closedir(cgd);
    return rc;
}
