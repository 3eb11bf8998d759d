/* backends/local/volumes.c - volumes: checking mount paths and making missing mount points as
 * the user.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Mount points that would let a node's user change what privileged programs
 * read (a root daemon mounts them): refused. */
static const char *const system_dirs[] = {
    "/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot",
    "/dev", "/proc", "/sys", "/run", "/var", "/root",
};

/* Checks a mount path: absolute, no empty, "." or ".." component, not / nor
 * a system directory (or below one). */
static int check_mount_path(const char *path, char *why, size_t len)
{
    if (!path || path[0] != '/') {
        snprintf(why, len, "is not an absolute path");
        return -1;
    }
    for (const char *p = path; *p;) {
        p++;
        size_t n = strcspn(p, "/");
        if ((n == 0 && p[0] == '/') || (n == 1 && p[0] == '.') ||
            (n == 2 && p[0] == '.' && p[1] == '.')) {
            snprintf(why, len, "has an empty, \".\" or \"..\" component");
            return -1;
        }
        p += n;
    }
    if (strspn(path, "/") == strlen(path)) {
        snprintf(why, len, "is the root directory");
        return -1;
    }
    for (size_t i = 0; i < sizeof system_dirs / sizeof system_dirs[0]; i++) {
        size_t l = strlen(system_dirs[i]);
        if (strncmp(path, system_dirs[i], l) == 0 && (path[l] == '\0' || path[l] == '/')) {
            snprintf(why, len, "is under the system directory %s", system_dirs[i]);
            return -1;
        }
    }
    return 0;
}

/* Makes sure mount point `target` exists on the host as the node's user would:
 * a child that became the user walks the path without following links and
 * makes what is missing (0755, the user's).  So root makes nothing in a
 * directory of the host, and a path the user could not make (another user's
 * home, /mnt when /mnt is root's) is refused.  Under /tmp nothing is made
 * here: the node's own /tmp gets it (netns.c).  What is made is never
 * removed: a node of another group or instance may have its volume mounted
 * there, and removing the directory would unmount it from under that node
 * (rmdir detaches a mount point in every other mount namespace). */
static int host_mount_point(const creds_t *c, const char *user, const char *volume,
                            const char *target, jg_error_t *err)
{
    if (strncmp(target, "/tmp/", 5) == 0)
        return 0;
    pid_t pid = fork();
    if (pid < 0)
        return jg_errprintf(err, "volume %s on %s: cannot fork: %s", volume, target,
                            strerror(errno));
    if (pid == 0) {
        /* Exit status: 0 ready; errno not reaching it; 128 + errno not making it. */
        if (c->active && (setgroups((size_t)c->n_groups, c->groups) < 0 || setgid(c->gid) < 0 ||
                          setuid(c->uid) < 0))
            _exit(errno > 0 && errno < 128 ? errno : EIO);
        int fd = jg_fs_open_dir(target, false, (uid_t)-1, (gid_t)-1);
        if (fd < 0 && errno != ENOENT)
            _exit(errno > 0 && errno < 128 ? errno : EIO);
        if (fd < 0 && (fd = jg_fs_open_dir(target, true, (uid_t)-1, (gid_t)-1)) < 0)
            _exit(128 + (errno > 0 && errno < 128 ? errno : EIO));
        _exit(0);
    }
    /* Waited for on the loop: the child only walks and makes directories
     * without following links or opening anything that could block (no
     * FIFO, no device), so it ends in a few system calls. */
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + EIO;
    if (code == 0)
        return 0;
    int e = code & 127;
    const char *why = e == ELOOP ? "a component is a symbolic link" : strerror(e);
    char who[80];
    if (c->active)
        snprintf(who, sizeof who, "%s", user ? user : "the group's user");
    else
        snprintf(who, sizeof who, "uid %d", (int)geteuid());
    if (code & 128)
        return jg_errprintf(err, "volume %s: the mount path %s does not exist and %s may not "
                            "create it (%s); create it first, or mount under a directory %s "
                            "may write", volume, target, who, why, who);
    return jg_errprintf(err, "volume %s: the mount path %s cannot be reached by %s (%s)", volume,
                        target, who, why);
}

/* The binds of one node: every volume its job names, each checked.
 * *out points into req and job (borrowed); caller frees the array. */
int plan_volumes(const local_t *b, const jg_launch_t *req, const jg_job_spec_t *job,
                 const creds_t *creds, jg_netns_bind_t **out, jg_error_t *err)
{
    *out = NULL;
    if (job->n_volumes == 0)
        return 0;
    if (!b->net.own_mounts)
        return jg_errprintf(err, "volume %s on %s: nodes share the host's mounts here (no "
                            "mount namespace per node: %s), so a volume cannot be mounted "
                            "in a node", job->volumes[0].value, job->volumes[0].key,
                            b->net.why[0] ? b->net.why : "isolation is off");
    jg_netns_bind_t *binds = jg_xcalloc(job->n_volumes, sizeof *binds);
    char why[128];
    for (size_t i = 0; i < job->n_volumes; i++) {
        const char *target = job->volumes[i].key, *name = job->volumes[i].value;
        const char *source = NULL;
        for (size_t k = 0; k < req->n_volumes && req->volumes; k++)
            if (req->volumes[k].key && name && strcmp(req->volumes[k].key, name) == 0)
                source = req->volumes[k].value;
        struct stat st;
        if (check_mount_path(target, why, sizeof why) < 0) {
            jg_errprintf(err, "volume %s: the mount path %s %s", name ? name : "?",
                         target ? target : "(none)", why);
            goto fail;
        }
        if (!source) {
            jg_errprintf(err, "volume %s (for %s) is not known to the daemon (create it "
                         "with `jgsched volume create %s`)", name ? name : "?", target,
                         name ? name : "NAME");
            goto fail;
        }
        if (source[0] != '/' || stat(source, &st) < 0 || !S_ISDIR(st.st_mode)) {
            jg_errprintf(err, "volume %s (for %s): its directory %s does not exist", name,
                         target, source);
            goto fail;
        }
        if (host_mount_point(creds, req->user, name, target, err) < 0)
            goto fail;
        binds[i] = (jg_netns_bind_t){.source = source, .target = target};
    }
    *out = binds;
    return 0;
fail:
    free(binds);
    return -1;
}
