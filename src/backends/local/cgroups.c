/* backends/local/cgroups.c - cgroups: finding where nodes may get their own, limiting and
 * removing them.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes text to an existing file (a cgroup knob) in one write(); 0 or -1 + errno. */
static int write_knob(const char *dir, const char *name, const char *text)
{
    char *path = jg_xasprintf("%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return -1;
    ssize_t r = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return r == (ssize_t)strlen(text) ? 0 : -1;
}

/* Whether a space-separated controller list names both cpu and memory. */
static bool cpu_and_memory(const char *list)
{
    bool cpu = false, mem = false;
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " \n");
        cpu = cpu || (n == 3 && strncmp(p, "cpu", 3) == 0);
        mem = mem || (n == 6 && strncmp(p, "memory", 6) == 0);
        p += n;
        p += strspn(p, " \n");
    }
    return cpu && mem;
}

/* Makes sure cgroup dir lets its children have cpu and memory. */
static int enable_controllers(const char *dir, char *why, size_t len)
{
    char *path = jg_xasprintf("%s/cgroup.subtree_control", dir);
    char have[256];
    bool ok = read_small(path, have, sizeof have) >= 0 && cpu_and_memory(have);
    free(path);
    if (ok || write_knob(dir, "cgroup.subtree_control", "+cpu +memory") == 0)
        return 0;
    int e = errno;
    snprintf(why, len, "cannot enable the cpu and memory controllers in %s: %s", dir,
             strerror(e));
    errno = e;
    return -1;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Finds where this instance may give nodes cgroups of their own: a cgroup v2
 * mount whose controllers include cpu and memory, and a cgroup we may divide
 * (the root of the tree we see, or our own if no other process is in it: we
 * then move into a leaf of it, as a delegated service must).  Sets
 * b->cg_base, or says why not. */
int cg_probe(local_t *b, char *why, size_t len)
{
    char mnt[PATH_MAX] = "", root[PATH_MAX] = "/", own[PATH_MAX] = "", line[4096], list[256];
    char *dir = NULL, *parent = NULL, *leaf = NULL, *inst = NULL;
    bool v1_memory = false;
    int rc = -1;
    FILE *f = fopen("/proc/self/mountinfo", "re");
    while (f && fgets(line, sizeof line, f)) {
        char *dash = strstr(line, " - "), fstype[32], mp[PATH_MAX], opts[1024];
        if (!dash || sscanf(dash + 3, "%31s %*s %1023s", fstype, opts) != 2)
            continue;
        if (strcmp(fstype, "cgroup") == 0 && strstr(opts, "memory"))
            v1_memory = true;
        if (strcmp(fstype, "cgroup2") == 0 && !mnt[0] &&
            sscanf(line, "%*s %*s %*s %4095s %4095s", root, mp) == 2)
            snprintf(mnt, sizeof mnt, "%s", mp);
    }
    if (f)
        fclose(f);
    f = fopen("/proc/self/cgroup", "re");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "0::", 3) == 0)
            snprintf(own, sizeof own, "%.*s", (int)strcspn(line + 3, "\n"), line + 3);
    if (f)
        fclose(f);
    if (!mnt[0] || !own[0]) {
        snprintf(why, len, "no cgroup v2 file system is mounted");
        goto done;
    }
    /* A mount of a subtree (root "/a/b") shows our cgroup "/a/b/c" as "/c". */
    size_t rl = strlen(root);
    if (strcmp(root, "/") != 0 && strncmp(own, root, rl) == 0 && (own[rl] == '/' || !own[rl]))
        memmove(own, own[rl] ? own + rl : "/", strlen(own[rl] ? own + rl : "/") + 1);
    dir = strcmp(own, "/") == 0 ? jg_xstrdup(mnt) : jg_xasprintf("%s%s", mnt, own);
    char *path = jg_xasprintf("%s/cgroup.controllers", dir);
    ssize_t got = read_small(path, list, sizeof list);
    free(path);
    if (got < 0 || !cpu_and_memory(list)) {
        size_t l = strcspn(list, "\n");
        snprintf(why, len, "cgroup v2 at %s has no cpu and memory controllers%s%.*s%s%s", dir,
                 got > 0 && l ? " (only: " : "", (int)(got > 0 ? l : 0), list,
                 got > 0 && l ? ")" : "",
                 v1_memory ? "; they belong to the cgroup v1 hierarchy here" : "");
        goto done;
    }
    /* Only a cgroup without processes of its own (or the real root) may hand
     * controllers to children: if ours has some, and they are only us, we
     * move into a leaf of it, as a delegated service must. */
    parent = jg_xstrdup(dir);
    if (enable_controllers(parent, why, len) < 0) {
        if (errno != EBUSY)
            goto done;
        char procs[64];
        path = jg_xasprintf("%s/cgroup.procs", dir);
        got = read_small(path, procs, sizeof procs);
        free(path);
        if (got <= 0 || atol(procs) != (long)getpid() || strchr(procs, '\n') != procs + got - 1) {
            snprintf(why, len, "the daemon's cgroup %s holds other processes too, so it cannot "
                     "be divided (run jgschedd in a cgroup of its own, e.g. a service with "
                     "Delegate=yes)", own);
            goto done;
        }
        leaf = jg_xasprintf("%s/jgschedd", dir);
        char pid[32];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        if ((mkdir(leaf, 0755) < 0 && errno != EEXIST) ||
            write_knob(leaf, "cgroup.procs", pid) < 0) {
            snprintf(why, len, "cannot move the daemon into %s: %s", leaf, strerror(errno));
            goto done;
        }
        if (enable_controllers(parent, why, len) < 0)
            goto done;
    }
    inst = jg_xasprintf("%s/jgsched-%016llx", parent, (unsigned long long)fnv1a(b->state_dir));
    if (mkdir(inst, 0755) < 0 && errno != EEXIST) {
        snprintf(why, len, "cannot create %s: %s", inst, strerror(errno));
        goto done;
    }
    if (enable_controllers(inst, why, len) < 0)
        goto done;
    b->cg_base = inst;
    inst = NULL;
    rc = 0;
done:
    free(dir);
    free(parent);
    free(leaf);
    free(inst);
    return rc;
}

/* An attempt's cgroup: g<group>-<job>-<rank>.<attempt>, named after the
 * node directory (<group dir>/<job>-<rank>), at launch and at reattach alike. */
char *cg_node_path(const local_t *b, int64_t group_id, const char *node_dir, int attempt)
{
    const char *slash = strrchr(node_dir, '/');
    return jg_xasprintf("%s/g%" PRId64 "-%s.%d", b->cg_base, group_id,
                        slash ? slash + 1 : node_dir, attempt);
}

/* The attempt's cgroup, limited to its job's cpus and memory. */
int cg_node_create(const char *cg, const jg_job_spec_t *job, jg_error_t *err)
{
    char text[64];
    if (mkdir(cg, 0755) < 0 && errno != EEXIST)
        return jg_errprintf(err, "cannot create the node's cgroup %s: %s", cg, strerror(errno));
    double cpus = jg_node_cpus(job), mem = jg_node_memory_gb(job);
    if (cpus > 0) {
        long long quota = (long long)(cpus * CG_PERIOD_US + 0.5);
        snprintf(text, sizeof text, "%lld %d", quota < 1000 ? 1000 : quota, CG_PERIOD_US);
        if (write_knob(cg, "cpu.max", text) < 0)
            return jg_errprintf(err, "cannot set cpu.max of %s to \"%s\": %s", cg, text,
                                strerror(errno));
    }
    if (mem > 0) {
        snprintf(text, sizeof text, "%lld", (long long)(mem * 1073741824.0 + 0.5));
        if (write_knob(cg, "memory.max", text) < 0)
            return jg_errprintf(err, "cannot set memory.max of %s to %s: %s", cg, text,
                                strerror(errno));
        (void)write_knob(cg, "memory.swap.max", "0");   /* a limit, not a reason to swap */
    }
    return 0;
}

/* Kills every process of a node's cgroup and removes it if it is empty
 * already; never waits (the kill takes a moment: cleanup() tries again from
 * a timer).  False while it is still there, holding processes. */
bool cg_node_remove(const char *cg)
{
    struct stat st;
    if (stat(cg, &st) < 0)
        return true;
    (void)write_knob(cg, "cgroup.kill", "1");
    return rmdir(cg) == 0 || errno != EBUSY;
}

/* "killed by the OOM killer (memory.max 8GB)" when the node's cgroup saw an
 * OOM kill; "" otherwise. */
void oom_note(const node_t *n, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!n->cgroup)
        return;
    char text[512], *path = jg_xasprintf("%s/memory.events", n->cgroup);
    ssize_t got = read_small(path, text, sizeof text);
    free(path);
    const char *p = got > 0 ? strstr(text, "oom_kill ") : NULL;
    if (!p || strtoull(p + 9, NULL, 10) == 0)
        return;
    path = jg_xasprintf("%s/memory.max", n->cgroup);
    got = read_small(path, text, sizeof text);
    free(path);
    unsigned long long bytes = got > 0 ? strtoull(text, NULL, 10) : 0;
    if (bytes)
        snprintf(buf, len, "killed by the OOM killer (memory.max %gGB)",
                 (double)bytes / 1073741824.0);
    else
        snprintf(buf, len, "killed by the OOM killer");
}

/* Kills what is left in the cgroups of a group's nodes and removes the empty
 * ones, without waiting; returns how many are still there, busy. */
size_t cg_group_try_remove(const local_t *b, int64_t group_id)
{
    size_t busy = 0;
    if (!b->cg_base)
        return 0;
    DIR *d = opendir(b->cg_base);
    if (!d)
        return 0;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "g%" PRId64 "-", group_id);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char *cg = jg_xasprintf("%s/%s", b->cg_base, de->d_name);
        if (!cg_node_remove(cg))
            busy++;
        free(cg);
    }
    closedir(d);
    return busy;
}

/* Whether some node cgroup of the group is left. */
bool cg_group_exists(const local_t *b, int64_t group_id)
{
    if (!b->cg_base)
        return false;
    DIR *d = opendir(b->cg_base);
    if (!d)
        return false;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "g%" PRId64 "-", group_id);
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)))
        found = strncmp(de->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return found;
}
