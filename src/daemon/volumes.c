/* volumes.c - volumes made with `jgsched volume create`, and where any
 * volume a spec names lives.
 *
 * Config-declared volumes are the admin's and cannot be created or removed
 * here.  A created volume is a directory under <home>/volumes owned by its
 * creator (their jobs write it); the daemon works on that directory only
 * through the descriptor of <home>/volumes, which is ours and closed to
 * others, and deletes a removed volume off the loop through the trash
 * (fsutil.h): no path into a user's tree is ever followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon_int.h"

/* Config-declared volumes first (they cannot be created or removed through the
 * CLI), then those created with `jgsched volume create`. */
char *jgd_volume_path(void *daemon, const char *name)
{
    jg_daemon_t *d = daemon;
    const char *declared = jg_config_volume_path(d->config, name);
    if (declared)
        return jg_xstrdup(declared);
    jg_volume_row_t v;
    jg_error_t err;
    if (jg_store_get_volume(d->store, name, &v, &err) < 0)
        return NULL;
    char *path = v.path;
    v.path = NULL;
    jg_volume_row_clear(&v);
    return path;
}

/* The directory holding a volume's directory (<home>/volumes), opened for
 * work through its descriptor.  It must be ours and closed to others: the
 * volume directories in it belong to users, the names in it to us alone. */
static int open_volume_parent(const char *dir, jg_error_t *err)
{
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return jg_errprintf(err, "cannot open %s: %s", dir, strerror(errno));
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 022)) {
        close(fd);
        return jg_errprintf(err, "%s must belong to uid %d and be writable by no one else",
                            dir, (int)geteuid());
    }
    return fd;
}

json_t *jgd_volume_create(jgd_conn_t *c, const char *name)
{
    if (!jg_spec_is_dns_label(name))
        return jg_proto_error("invalid volume name '%s': use lowercase letters, digits and '-' "
                              "(a DNS label, at most 63 characters)", name);
    jg_daemon_t *d = c->daemon;
    if (jg_config_volume_path(d->config, name))
        return jg_proto_error("volume %s is declared in %s; it already exists", name,
                              d->paths.config);
    char *dir = jg_xasprintf("%s/volumes", d->paths.home);
    char *path = jg_xasprintf("%s/%s", dir, name);
    json_t *reply = NULL;
    jg_error_t err;
    int vfd = -1, fd = -1;
    if (jg_mkdir_p(dir, 0711, &err) < 0 || (vfd = open_volume_parent(dir, &err)) < 0) {
        reply = jg_proto_error("%s", err.text);
        goto done;
    }
    if (jg_store_add_volume(d->store, name, path, c->uid, c->user, jg_now_wall_us(), &err) < 0) {
        reply = jg_proto_error("%s", err.text);
        goto done;
    }
    /* A directory left by an earlier volume of that name is not handed to a
     * new owner: it goes to the trash, and the volume starts empty. */
    int made = mkdirat(vfd, name, 0750);
    if (made < 0 && errno == EEXIST && jg_trash_put(d->trash, vfd, name, &err) == 0)
        made = mkdirat(vfd, name, 0750);
    /* The volume's files belong to whoever created it, as their jobs write them. */
    if (made < 0 || (fd = openat(vfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fchown(fd, c->uid, c->gid) < 0) {
        int e = errno;
        jg_store_remove_volume(d->store, name, NULL);
        reply = jg_proto_error("cannot create %s: %s", path, strerror(e));
        goto done;
    }
    jg_log("info", "volume %s created by %s at %s", name, c->user, path);
    reply = json_pack("{s:b, s:s, s:s}", "ok", 1, "name", name, "path", path);
done:
    if (fd >= 0)
        close(fd);
    if (vfd >= 0)
        close(vfd);
    free(path);
    free(dir);
    return reply;
}

json_t *jgd_volume_list(jg_daemon_t *d)
{
    json_t *list = json_array();
    for (size_t i = 0; i < d->config->n_volumes; i++) {
        const jg_config_volume_t *v = &d->config->volumes[i];
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I}", "name", v->name, "path",
                                              v->path, "source", "config", "owner", "",
                                              "used_by", (json_int_t)jg_sched_volume_user(
                                                             d->sched, v->name)));
    }
    jg_volume_row_t *rows = NULL;
    size_t n = 0;
    jg_error_t err;
    if (jg_store_list_volumes(d->store, &rows, &n, &err) < 0) {
        json_decref(list);
        return jg_proto_error("%s", err.text);
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:o, s:I}", "name",
                                              rows[i].name, "path", rows[i].path, "source",
                                              "created", "owner", rows[i].user, "created",
                                              jg_proto_time(rows[i].created_us), "used_by",
                                              (json_int_t)jg_sched_volume_user(d->sched,
                                                                               rows[i].name)));
    jg_volume_rows_free(rows, n);
    return json_pack("{s:b, s:o}", "ok", 1, "volumes", list);
}

json_t *jgd_volume_remove(jgd_conn_t *c, const char *name)
{
    jg_daemon_t *d = c->daemon;
    if (jg_config_volume_path(d->config, name))
        return jg_proto_error("volume %s is declared in %s; remove it there", name, d->paths.config);
    jg_volume_row_t v;
    jg_error_t err;
    if (jg_store_get_volume(d->store, name, &v, &err) < 0)
        return jg_proto_error("%s", err.text);
    json_t *reply = NULL;
    int64_t user_group = jg_sched_volume_user(d->sched, name);
    if (v.uid != c->uid && !jg_config_is_admin(d->config, c->user, c->uid, c->gid))
        reply = jg_proto_error("permission denied: volume %s belongs to %s", name, v.user);
    else if (user_group)
        reply = jg_proto_error("volume %s is in use by group %lld; it can be removed once that "
                               "group ended", name, (long long)user_group);
    else if (jg_store_remove_volume(d->store, name, &err) < 0)
        reply = jg_proto_error("%s", err.text);
    if (!reply) {
        /* Its files are its owner's: moved to the trash through the
         * descriptor of the directory holding it, deleted off the loop as
         * that owner (fsutil.h); no path into the user's tree is followed. */
        char *slash = strrchr(v.path, '/');
        char *parent = slash && slash != v.path ? jg_xstrndup(v.path, (size_t)(slash - v.path))
                                                : jg_xstrdup("/");
        int pfd = open_volume_parent(parent, &err);
        if (pfd < 0 || jg_trash_put(d->trash, pfd, slash ? slash + 1 : v.path, &err) < 0)
            jg_log("warn", "volume %s: cannot remove %s: %s", name, v.path, err.text);
        if (pfd >= 0)
            close(pfd);
        free(parent);
        jg_log("info", "volume %s removed by %s", name, c->user);
        reply = jg_proto_ok();
    }
    jg_volume_row_clear(&v);
    return reply;
}

