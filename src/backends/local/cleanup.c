/* backends/local/cleanup.c - cleanup: what a group leaves behind, removed.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_protocol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Removes the group's hub (its keeper, followed or only recorded) and the
 * files that described it. */
static int cleanup_network(local_t *b, int64_t group_id, const char *gdir, jg_error_t *err)
{
    int rc = 0;
    gnet_t *g = gnet_find(b, group_id);
    jg_netns_hub_t hub;
    pid_t pid;
    unsigned long long start;
    if (g)
        rc = gnet_free(b, g, true, err);
    else if (read_net_file(b, group_id, &pid, &start) == 0 &&
             jg_netns_hub_open(pid, start, &hub, NULL) == 0)
        rc = jg_netns_hub_destroy(&hub, CLEANUP_WAIT_MS, err);
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

/* The whole group directory, logs too: into the trash in one rename. */
static int purge_group_dir(local_t *b, int64_t group_id, jg_error_t *err)
{
    char *groups = jg_xasprintf("%s/groups", b->state_dir);
    char name[32];
    snprintf(name, sizeof name, "%" PRId64, group_id);
    int gfd = open(groups, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int rc = gfd < 0 ? (errno == ENOENT ? 0 : jg_errprintf(err, "cannot open %s: %s", groups,
                                                            strerror(errno)))
                     : jg_trash_put(b->trash, gfd, name, err);
    if (gfd >= 0)
        close(gfd);
    free(groups);
    return rc;
}

int local_cleanup(jg_backend_t *base, int64_t group_id, bool purge, jg_error_t *err)
{
    local_t *b = base->impl;
    int rc = 0;
    char *gdir = group_dir(b, group_id);
    DIR *d = NULL;

    /* Kill every live node of the group and wait (briefly) for the shims to die. */
    size_t count = 0;
    for (node_t *n = b->nodes; n; n = n->next)
        if (n->group_id == group_id)
            count++;
    node_t **live = jg_xcalloc(count ? count : 1, sizeof *live);
    count = 0;
    for (node_t *n = b->nodes; n; n = n->next) {
        if (n->group_id == group_id) {
            n->quiet = true;
            kill_node_tree(b, n->pid, n->start);
            live[count++] = n;
        }
    }
    int64_t deadline = jg_now_mono_ms() + CLEANUP_WAIT_MS;
    for (size_t i = 0; i < count; i++) {
        struct pollfd pfd = {.fd = live[i]->pidfd, .events = POLLIN};
        int64_t left = deadline - jg_now_mono_ms();
        if (poll(&pfd, 1, left > 0 ? (int)left : 0) == 1)
            node_dead(b, live[i]);      /* quiet: reaps and frees, reports nothing */
    }
    free(live);
    /* The shims nobody follows (the daemon restarted in between), from our
     * own record; their cgroups go next, with anything that left them. */
    kill_recorded_shims(b, gdir);
    char *record = jg_xasprintf("%s/%s", gdir, GROUP_SHIMS);
    if (unlink(record) < 0 && errno != ENOENT && rc == 0)
        rc = jg_errprintf(err, "cannot remove %s: %s", record, strerror(errno));
    free(record);
    cg_group_remove(b, group_id, CLEANUP_WAIT_MS);

    jg_error_t e;
    d = opendir(gdir);
    if (!d) {
        if (errno != ENOENT)
            rc = jg_errprintf(err, "cannot read %s: %s", gdir, strerror(errno));
        if (cleanup_network(b, group_id, gdir, &e) < 0 && rc == 0)
            rc = jg_errprintf(err, "%s", e.text);
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *dir = jg_xasprintf("%s/%s", gdir, de->d_name);
        struct stat st;
        if (lstat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            if (clean_node_dir(b, dir, &e) < 0 && rc == 0)
                rc = jg_errprintf(err, "%s", e.text);
        }
        free(dir);
    }
    if (cleanup_network(b, group_id, gdir, &e) < 0 && rc == 0)
        rc = jg_errprintf(err, "%s", e.text);
    if (purge)
        rc = purge_group_dir(b, group_id, err);     /* earlier errors do not matter */
done:
    if (d)
        closedir(d);
    free(gdir);
    return rc;
}
