/* backends/local/shims.c - the group's own record of its shims (.shims), and killing a node's
 * process tree.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

/* Whether a network namespace can only have been made by a node's child of
 * ours: not our own (the host's), and, when we are root, owned by our own
 * user namespace, where an unprivileged user cannot make one (theirs hang
 * below a user namespace they created).  A shim runs as its user, who could
 * move it into a namespace of their own; we then kill none of its members. */
static bool netns_made_by_us(int nsfd)
{
    struct stat ns, own;
    if (fstat(nsfd, &ns) < 0 || stat("/proc/self/ns/net", &own) < 0 ||
        (ns.st_dev == own.st_dev && ns.st_ino == own.st_ino))
        return false;
    if (geteuid() != 0)
        return true;        /* an instance of one user signals only that user's processes */
    int userns = ioctl(nsfd, NS_GET_USERNS);
    bool ours = userns >= 0 && fstat(userns, &ns) == 0 && stat("/proc/self/ns/user", &own) == 0 &&
                ns.st_dev == own.st_dev && ns.st_ino == own.st_ino;
    if (userns >= 0)
        close(userns);
    return ours;
}

/* Kills a shim's process group and, when nodes have their own network
 * namespace, every process left in it (one that left the group by setsid).
 * pid and start come from our own records only (the fork, the store's
 * handle, the group's .shims), never from a file the node's user can write.
 * The namespace is held open across the kill, so its identity cannot be
 * reused meanwhile; nothing is killed if the pid no longer has `start`. */
void kill_node_tree(const local_t *b, pid_t pid, unsigned long long start)
{
    int nsfd = -1;
    unsigned long long now = 0;
    if (pid <= 1)
        return;
    if (isolated(b)) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int)pid);
        nsfd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (jg_proc_starttime(pid, &now) == 0 && now == start) {
        /* The shim itself too: a node's child killed right after its fork
         * may not have made its session (its process group) yet. */
        (void)jg_proc_kill(-pid, SIGKILL);
        (void)jg_proc_kill(pid, SIGKILL);
        if (nsfd >= 0 && netns_made_by_us(nsfd))
            jg_netns_kill_members(nsfd);
    }
    if (nsfd >= 0)
        close(nsfd);
}

/* Appends one shim to the group's record; 0, or -1 + err. */
int record_shim(const char *gdir, const char *node, int attempt, pid_t pid,
                unsigned long long start, const char *gpus, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    int fd = open_own_record(path, O_WRONLY | O_APPEND | O_CREAT, err);
    free(path);
    if (fd < 0)
        return -1;
    char *line = jg_xasprintf("%d %d %llu %s %s\n", attempt, (int)pid, start,
                              gpus && gpus[0] ? gpus : "-", node);
    ssize_t w = write(fd, line, strlen(line));     /* O_APPEND: one line, whole */
    int rc = 0;
    if (w != (ssize_t)strlen(line))
        rc = jg_errprintf(err, "cannot record shim %d in %s/%s: %s", (int)pid, gdir, GROUP_SHIMS,
                          w < 0 ? strerror(errno) : "short write");
    free(line);
    close(fd);
    return rc;
}

/* Parses one record line; false if it is not one. */
static bool parse_shim_rec(const char *line, shim_rec_t *r)
{
    int pid, used = 0;
    char gpus[sizeof r->gpus];
    if (sscanf(line, "%d %d %llu %767s %n", &r->attempt, &pid, &r->start, gpus, &used) != 4 ||
        used == 0 || pid <= 1 || r->attempt < 1)
        return false;
    size_t l = strcspn(line + used, "\n");
    if (l == 0 || l >= sizeof r->node)
        return false;
    memcpy(r->node, line + used, l);
    r->node[l] = '\0';
    r->pid = pid;
    snprintf(r->gpus, sizeof r->gpus, "%s", strcmp(gpus, "-") == 0 ? "" : gpus);
    return true;
}

/* The group's record, in order (caller frees); NULL with *n = 0 if there is
 * none or it is not the daemon's own file. */
shim_rec_t *read_shim_records(const char *gdir, size_t *n)
{
    *n = 0;
    char *path = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    jg_error_t err;
    int fd = open_own_record(path, O_RDONLY, &err);
    if (fd < 0 && errno != ENOENT)
        jg_log("warn", "%s", err.text);
    free(path);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    shim_rec_t *v = NULL;
    size_t cap = 0;
    char line[sizeof v->gpus + sizeof v->node + 96];
    while (fgets(line, sizeof line, f)) {
        shim_rec_t r;
        if (!parse_shim_rec(line, &r))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            v = jg_xrealloc(v, cap * sizeof *v);
        }
        v[(*n)++] = r;
    }
    fclose(f);
    return v;
}

/* Kills every shim the group's record names that still runs (its start time
 * matches), with its process group and its own network namespace. */
void kill_recorded_shims(const local_t *b, const char *gdir)
{
    size_t n = 0;
    shim_rec_t *v = read_shim_records(gdir, &n);
    for (size_t i = 0; i < n; i++)
        kill_node_tree(b, v[i].pid, v[i].start);
    free(v);
}
