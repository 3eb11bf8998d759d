/* backends/local/spawn.c - launch: everything a node gets, then the spawn of its shim.
 * Part of the local backend (backend.c has the overview, local_int.h the map). */
#include "local_int.h"
#include "../../shim_node.h"
#include "../../shim_protocol.h"
#include "jgsched/nodeenv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/wait.h>

static bool same_key(const char *a, const char *b)
{
    size_t la = strcspn(a, "="), lb = strcspn(b, "=");
    return la == lb && strncmp(a, b, la) == 0;
}

/* Appends HOME, USER, LOGNAME of the node's user unless the job's envs set
 * them, and `forced` (GPU variables: ours, replacing any the job set);
 * returns the env as one NUL-separated buffer (caller frees). */
static char *env_blob(char **env, const struct passwd *pw, const char *user,
                      char *const *forced, size_t n_forced, size_t *len_out)
{
    const char *home = pw && pw->pw_dir ? pw->pw_dir : "/";
    const char *name = pw && pw->pw_name ? pw->pw_name : user;
    char *extra[3] = {jg_xasprintf("HOME=%s", home), jg_xasprintf("USER=%s", name ? name : ""),
                      jg_xasprintf("LOGNAME=%s", name ? name : "")};
    size_t len = 0;
    for (char **p = env; *p; p++)
        len += strlen(*p) + 1;
    for (int i = 0; i < 3; i++)
        len += strlen(extra[i]) + 1;
    for (size_t i = 0; i < n_forced; i++)
        len += strlen(forced[i]) + 1;
    char *blob = jg_xmalloc(len + 1);
    size_t off = 0;
    for (char **p = env; *p; p++) {
        bool replaced = false;
        for (size_t i = 0; i < n_forced; i++)
            replaced = replaced || same_key(*p, forced[i]);
        if (replaced)
            continue;
        size_t l = strlen(*p);
        memcpy(blob + off, *p, l + 1);
        off += l + 1;
    }
    for (size_t i = 0; i < n_forced; i++) {
        size_t l = strlen(forced[i]);
        memcpy(blob + off, forced[i], l + 1);
        off += l + 1;
    }
    for (int i = 0; i < 3; i++) {
        size_t keylen = (size_t)(strchr(extra[i], '=') - extra[i]) + 1;
        bool set = false;
        for (char **p = env; *p; p++)
            if (strncmp(*p, extra[i], keylen) == 0)
                set = true;
        if (!set) {
            size_t l = strlen(extra[i]);
            memcpy(blob + off, extra[i], l + 1);
            off += l + 1;
        }
        free(extra[i]);
    }
    *len_out = off;
    return blob;
}

/* What every node of a launch shares of its group's network. */
typedef struct {
    int hub_pidfd;              /* -1 when nodes share the host network */
    const char *hosts_path;     /* NULL when nodes keep the host's /etc/hosts */
    const char *resolv_path;    /* NULL when nodes keep the host's /etc/resolv.conf */
} group_net_t;

/* The node's /tmp, <node dir>/tmp, made (or found again, for a later
 * attempt) and opened without following anything the node's user may have
 * put there: a symbolic link in its place is refused, never chmod'ed.  It must
 * be a directory of ours or of the node's user.  Returns an O_RDONLY
 * directory fd (close-on-exec) with mode 01777, or -1 + err. */
static int open_node_tmp(const char *dir, const creds_t *creds, jg_error_t *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return jg_errprintf(err, "cannot open %s: %s", dir, strerror(errno));
    int fd = -1;
    struct stat st = {0};
    if (mkdirat(dfd, NODE_TMP, 01777) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create %s/%s: %s", dir, NODE_TMP, strerror(errno));
        goto done;
    }
    fd = openat(dfd, NODE_TMP, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        jg_errprintf(err, "refusing %s/%s: %s", dir, NODE_TMP,
                     errno == ELOOP || errno == ENOTDIR ? "it is not a directory (a symbolic "
                     "link or file was put there)" : strerror(errno));
        goto done;
    }
    bool owner_ok = fstat(fd, &st) == 0 &&
                    (st.st_uid == geteuid() || (creds->active && st.st_uid == creds->uid));
    if (!owner_ok) {
        jg_errprintf(err, "refusing %s/%s: it belongs to uid %d, neither the daemon nor the "
                     "node's user", dir, NODE_TMP, (int)st.st_uid);
        close(fd);
        fd = -1;
        goto done;
    }
    if (fchmod(fd, 01777) < 0) {
        jg_errprintf(err, "cannot set the mode of %s/%s: %s", dir, NODE_TMP, strerror(errno));
        close(fd);
        fd = -1;
    }
done:
    close(dfd);
    return fd;
}

/* One node being made: what launch_one's steps build, in the order they
 * build it, and undo (node_build_free) if a later step fails. */
typedef struct {
    local_t *b;
    const jg_launch_t *req;
    const jg_node_ref_t *ref;
    const jg_job_spec_t *job;
    const creds_t *creds;
    const struct passwd *pw;
    const group_net_t *gnet;
    char *gdir;                 /* <state_dir>/groups/<id> */
    char *dir;                  /* the node directory */
    char *tmp;                  /* <dir>/tmp when the node gets its own /tmp, else NULL */
    int tmp_fd;                 /* that directory, as checked */
    jg_netns_bind_t *binds;     /* its volumes (job->n_volumes), or NULL */
    int gpus[MAX_GPUS_PER_NODE];
    size_t n_gpus;              /* taken from the pool, not yet handed to a node record */
    char gpu_list[MAX_GPUS_PER_NODE * 12];  /* "0,1" */
    char *forced[2];            /* GPU variables that replace the job's */
    size_t n_forced;
    char *gpu_log;              /* the line the node's log gets about its GPUs, or NULL */
    char *cg;                   /* the attempt's cgroup, or NULL */
    int cg_fd;                  /* its cgroup.procs, for the child to join */
    char (*ips)[32];            /* the job's node addresses, by rank */
    struct stat status_st;      /* the status file when the watch was set */
    int wd;                     /* that watch */
    int errpipe[2];             /* the child's reason, should it fail before exec */
    pid_t pid;                  /* the shim, once started */
    int pidfd;
    unsigned long long start;
} node_build_t;

/* The node directory (the node's owner and root only), and its work directory. */
static int make_node_dirs(node_build_t *nb, jg_error_t *err)
{
    int rc = -1;
    char *path = NULL;
    if (jg_mkdir_p(nb->gdir, 0711, err) < 0)
        goto done;
    if (mkdir(nb->dir, 0700) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create %s: %s", nb->dir, strerror(errno));
        goto done;
    }
    if (own(nb->creds, nb->dir, err) < 0)
        goto done;
    path = jg_xasprintf("%s/%s", nb->dir, JG_SHIM_WORK);
    if (mkdir(path, 0755) < 0 && errno != EEXIST) {
        jg_errprintf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    if (own(nb->creds, path, err) < 0)
        goto done;
    rc = 0;
done:
    free(path);
    return rc;
}

/* The node's /tmp: kept across attempts, removed by cleanup.  The child
 * mounts it by name (in its own mount namespace), then checks that what it
 * mounted is this very directory. */
static int make_node_tmp(node_build_t *nb, jg_error_t *err)
{
    if (!nb->b->net.own_mounts)
        return 0;
    nb->tmp_fd = open_node_tmp(nb->dir, nb->creds, err);
    if (nb->tmp_fd < 0)
        return -1;
    nb->tmp = jg_xasprintf("%s/%s", nb->dir, NODE_TMP);
    return 0;
}

/* Volumes: checked, their host mount points made, before anything runs. */
static int check_volumes(node_build_t *nb, jg_error_t *err)
{
    return plan_volumes(nb->b, nb->req, nb->job, nb->creds, &nb->binds, err);
}

/* GPUs: the job's count of its type, by index; an earlier attempt's go back
 * first (this one replaces it).  Their indices go to <dir>/gpus. */
static int take_gpus(node_build_t *nb, jg_error_t *err)
{
    local_t *b = nb->b;
    const jg_node_ref_t *ref = nb->ref;
    for (node_t *o = b->nodes; o; o = o->next)
        if (o->group_id == nb->req->group_id && o->job_index == ref->job_index &&
            o->rank == ref->rank)
            node_put_gpus(o);
    const char *accel = nb->job->accel.name;
    int want = accel ? nb->job->accel.count : 0;
    char *list = nb->gpu_list;
    if (want > 0 && b->gpus_known) {
        if (want > MAX_GPUS_PER_NODE || jg_gpu_pool_take(b->gpus, accel, want, nb->gpus) < 0)
            return jg_errprintf(err, "no GPU for this node: it asks %s:%d, and %zu of the "
                                "host's %zu %s GPU(s) are free", accel, want,
                                jg_gpu_pool_count(b->gpus, accel, true),
                                jg_gpu_pool_count(b->gpus, accel, false), accel);
        nb->n_gpus = (size_t)want;
        format_indices(nb->gpus, nb->n_gpus, list, sizeof nb->gpu_list);
        nb->forced[nb->n_forced++] = jg_xasprintf("CUDA_VISIBLE_DEVICES=%s", list);
        nb->forced[nb->n_forced++] = jg_xasprintf("NVIDIA_VISIBLE_DEVICES=%s", list);
        nb->gpu_log = jg_xasprintf("jgsched: GPUs %s (%s:%d): CUDA_VISIBLE_DEVICES=%s\n", list,
                                   accel, want, list);
    } else if (want > 0) {
        nb->gpu_log = jg_xasprintf("jgsched: warning: this node asks %s:%d, but no GPU index "
                                   "is known on this host (%s): CUDA_VISIBLE_DEVICES is not "
                                   "set\n", accel, want, b->gpus_why);
    } else if (b->gpus_known) {
        nb->forced[nb->n_forced++] = jg_xstrdup("CUDA_VISIBLE_DEVICES=");   /* asked none */
    }
    if (nb->n_gpus) {
        char *text = jg_xasprintf("%d %s\n", ref->attempt, list);
        int r = write_file(nb->creds, nb->dir, JG_SHIM_GPUS, text, strlen(text), 0644, err);
        free(text);
        return r;
    }
    char *path = jg_xasprintf("%s/%s", nb->dir, JG_SHIM_GPUS);
    int rc = 0;
    if (unlink(path) < 0 && errno != ENOENT)
        rc = jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

/* cgroup: the attempt's own, limited to the job's cpus and memory; the child
 * joins it through cg_fd. */
static int make_cgroup(node_build_t *nb, jg_error_t *err)
{
    if (!nb->b->cg_base)
        return 0;
    nb->cg = cg_node_path(nb->b, nb->req->group_id, nb->dir, nb->ref->attempt);
    if (cg_node_create(nb->cg, nb->job, err) < 0)
        return -1;
    char *path = jg_xasprintf("%s/cgroup.procs", nb->cg);
    nb->cg_fd = open(path, O_WRONLY | O_CLOEXEC);
    int rc = 0;
    if (nb->cg_fd < 0)
        rc = jg_errprintf(err, "cannot open %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

/* The node's environment (DESIGN section 4, then HOME/USER/LOGNAME and the
 * GPU variables) into <dir>/env, for the shim. */
static int write_env(node_build_t *nb, jg_error_t *err)
{
    const jg_launch_t *req = nb->req;
    const jg_node_ref_t *ref = nb->ref;
    int num = nb->job->num_nodes;
    nb->ips = jg_xcalloc((size_t)num, sizeof *nb->ips);
    const char **ip_ptrs = jg_xcalloc((size_t)num + 1, sizeof *ip_ptrs);
    for (int r = 0; r < num; r++) {
        node_address(nb->b, req->spec, ref->job_index, r, nb->ips[r], sizeof nb->ips[r]);
        ip_ptrs[r] = nb->ips[r];
    }
    char **env = jg_node_env(req->spec, req->group_id, ref->job_index, ref->rank, ref->attempt,
                             req->submitted_us, ip_ptrs);
    size_t blob_len = 0;
    char *blob = env_blob(env, nb->pw, req->user, nb->forced, nb->n_forced, &blob_len);
    int rc = write_file(nb->creds, nb->dir, JG_SHIM_ENV, blob, blob_len, 0600, err);
    free(blob);
    jg_env_free(env);
    free(ip_ptrs);
    return rc;
}

/* The job's setup, run and workdir, each in its file (or none). */
static int write_scripts(node_build_t *nb, jg_error_t *err)
{
    struct {
        const char *name;
        const char *text;
        mode_t mode;
    } files[] = {
        {JG_SHIM_SETUP, nb->job->setup, 0644},
        {JG_SHIM_RUN, nb->job->run, 0644},
        {JG_SHIM_WORKDIR, nb->job->workdir, 0644},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (files[i].text) {
            char *text = jg_xasprintf("%s\n", files[i].text);
            int r = write_file(nb->creds, nb->dir, files[i].name, text, strlen(text),
                               files[i].mode, err);
            free(text);
            if (r < 0)
                return -1;
        } else {
            char *path = jg_xasprintf("%s/%s", nb->dir, files[i].name);
            int r = 0;
            if (unlink(path) < 0 && errno != ENOENT)
                r = jg_errprintf(err, "cannot remove %s: %s", path, strerror(errno));
            free(path);
            if (r < 0)
                return -1;
        }
    }
    return 0;
}

/* The barrier: a fresh FIFO per attempt, so an old shim keeps its own. */
static int make_barrier(node_build_t *nb, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/%s", nb->dir, JG_SHIM_RELEASE);
    int rc = 0;
    if ((unlink(path) < 0 && errno != ENOENT) || mkfifo(path, 0600) < 0)
        rc = jg_errprintf(err, "cannot create the FIFO %s: %s", path, strerror(errno));
    else if (own(nb->creds, path, err) < 0)
        rc = -1;
    free(path);
    return rc;
}

/* output.log exists from the start, so open_log works before the shim runs;
 * the attempt's start is noted, and what the node lacks is said in it. */
static int open_output_log(node_build_t *nb, jg_error_t *err)
{
    local_t *b = nb->b;
    char *path = jg_xasprintf("%s/%s", nb->dir, JG_SHIM_LOG);
    int fd = open_node_file(nb->dir, JG_SHIM_LOG, O_WRONLY | O_CREAT | O_APPEND, 0644, NULL,
                            err);
    int rc = -1;
    if (fd < 0)
        goto done;
    if (nb->creds->active && fchown(fd, nb->creds->uid, nb->creds->gid) < 0) {
        jg_errprintf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    struct stat log_st;
    if (fstat(fd, &log_st) == 0)
        note_attempt_start(nb->dir, nb->ref->attempt, (int64_t)log_st.st_size);
    if (b->warning) {       /* never silently: the user reads it with the node's output */
        char *line = jg_xasprintf("jgsched: warning: %s\n", b->warning);
        (void)!write(fd, line, strlen(line));
        free(line);
    }
    if (nb->gpu_log)
        (void)!write(fd, nb->gpu_log, strlen(nb->gpu_log));
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* status: the new attempt's lines start at its current end; inotify says
 * when more come. */
static int watch_status(node_build_t *nb, jg_error_t *err)
{
    char *path = jg_xasprintf("%s/%s", nb->dir, JG_SHIM_STATUS);
    int fd = open_node_file(nb->dir, JG_SHIM_STATUS, O_WRONLY | O_CREAT | O_APPEND, 0644,
                            &nb->status_st, err);
    int rc = -1;
    if (fd < 0)
        goto done;
    if (nb->creds->active && fchown(fd, nb->creds->uid, nb->creds->gid) < 0) {
        jg_errprintf(err, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    close(fd);
    fd = -1;
    nb->wd = inotify_add_watch(nb->b->inotify_fd, path, IN_MODIFY | IN_DONT_FOLLOW);
    if (nb->wd < 0) {
        jg_errprintf(err, "cannot watch %s: %s", path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* The arguments of `jgsched-shim --node` (shim_node.h), appended to av. */
typedef struct {
    char **v;
    size_t n, cap;
} argv_t;

static void arg_add(argv_t *av, char *arg)     /* takes arg (NULL: the end) */
{
    if (av->n == av->cap) {
        av->cap = av->cap ? av->cap * 2 : 32;
        av->v = jg_xrealloc(av->v, av->cap * sizeof *av->v);
    }
    av->v[av->n++] = arg;
}

static void arg_free(argv_t *av)
{
    for (size_t i = 0; i < av->n; i++)
        free(av->v[i]);
    free(av->v);
}

/* Starts the node's first process, `jgsched-shim --node`, with its network
 * plan (its address and hostname in the group's network, the group's hosts
 * and resolv.conf, its /tmp and volumes) and credentials: posix_spawn, which
 * does not copy the daemon (a vfork-like start, then exec), so it costs the
 * loop the same however large the daemon is.  The child becomes the node and
 * execs the shim (src/shim_node.c); it tells why it could not on errpipe. */
static int spawn_node(node_build_t *nb, jg_error_t *err)
{
    local_t *b = nb->b;
    const creds_t *creds = nb->creds;
    int index = jg_netns_node_index(nb->req->spec, nb->ref->job_index, nb->ref->rank);
    int rc = -1;
    argv_t av = {0};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    if (pipe2(nb->errpipe, O_CLOEXEC) < 0) {
        jg_errprintf(err, "cannot create a pipe: %s", strerror(errno));
        goto done;
    }
    /* Read only once the child ended (child_error), when the write end is
     * closed; never blocking, even if a descendant kept it open. */
    (void)fcntl(nb->errpipe[0], F_SETFL, O_NONBLOCK);

    /* The descriptors it needs, inherited by number (dup2 onto itself
     * clears close-on-exec in the child only). */
    int pass[] = {nb->errpipe[1], b->shim_fd, isolated(b) ? nb->gnet->hub_pidfd : -1,
                  nb->cg_fd, nb->tmp_fd};
    for (size_t i = 0; i < sizeof pass / sizeof *pass; i++)
        if (pass[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, pass[i], pass[i]);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    arg_add(&av, jg_xstrdup(b->shim_path));
    arg_add(&av, jg_xstrdup(JG_SHIM_NODE_ARG));
    arg_add(&av, jg_xasprintf("err=%d", nb->errpipe[1]));
    arg_add(&av, jg_xasprintf("shim=%d", b->shim_fd));
    if (pass[2] >= 0)
        arg_add(&av, jg_xasprintf("hub=%d", pass[2]));
    if (nb->cg_fd >= 0) {
        arg_add(&av, jg_xasprintf("cg=%d", nb->cg_fd));
        arg_add(&av, jg_xasprintf("cgpath=%s", nb->cg));
    }
    if (nb->tmp_fd >= 0)
        arg_add(&av, jg_xasprintf("tmpfd=%d", nb->tmp_fd));
    arg_add(&av, jg_xasprintf("mode=%d", (int)b->net.mode));
    arg_add(&av, jg_xasprintf("mounts=%d", b->net.own_mounts ? 1 : 0));
    arg_add(&av, jg_xasprintf("index=%d", index));
    arg_add(&av, jg_xasprintf("host=%s-%d", nb->job->name, nb->ref->rank));
    if (nb->gnet->hosts_path)
        arg_add(&av, jg_xasprintf("hosts=%s", nb->gnet->hosts_path));
    if (nb->gnet->resolv_path)
        arg_add(&av, jg_xasprintf("resolv=%s", nb->gnet->resolv_path));
    arg_add(&av, jg_xasprintf("route=%d", b->nat ? 1 : 0));
    if (nb->tmp)
        arg_add(&av, jg_xasprintf("tmp=%s", nb->tmp));
    arg_add(&av, jg_xasprintf("keep=%s", nb->dir));
    arg_add(&av, jg_xasprintf("uid=%u", (unsigned)(creds->active ? creds->uid : geteuid())));
    arg_add(&av, jg_xasprintf("gid=%u", (unsigned)(creds->active ? creds->gid : getegid())));
    if (creds->active) {
        char groups[MAX_GROUPS * 12] = "";
        size_t len = 0;
        for (int i = 0; i < creds->n_groups && len < sizeof groups; i++)
            len += (size_t)snprintf(groups + len, sizeof groups - len, "%s%u", i ? "," : "",
                                    (unsigned)creds->groups[i]);
        arg_add(&av, jg_xasprintf("user=%u:%u:%s", (unsigned)creds->uid,
                                  (unsigned)creds->gid, groups));
    }
    for (size_t i = 0; nb->binds && i < nb->job->n_volumes; i++) {
        arg_add(&av, jg_xasprintf("src=%s", nb->binds[i].source));
        arg_add(&av, jg_xasprintf("dst=%s", nb->binds[i].target));
    }
    arg_add(&av, jg_xstrdup("--"));
    arg_add(&av, jg_xstrdup(b->shim_path));
    arg_add(&av, jg_xstrdup(nb->dir));
    arg_add(&av, jg_xasprintf("%d", nb->ref->attempt));
    if (isolated(b))
        arg_add(&av, jg_xstrdup("net"));
    arg_add(&av, NULL);

    /* The shim the daemon opened, through its descriptor: never a path that
     * could have been swapped since. */
    char exe[32];
    snprintf(exe, sizeof exe, "/proc/self/fd/%d", b->shim_fd);
    char *envp[] = {NULL};
    int e = posix_spawn(&nb->pid, exe, &fa, &attr, av.v, envp);
    if (e != 0) {
        nb->pid = -1;
        jg_errprintf(err, "cannot start %s: %s", b->shim_path, strerror(e));
        goto done;
    }
    close(nb->errpipe[1]);
    nb->errpipe[1] = -1;
    if (nb->cg_fd >= 0) {
        close(nb->cg_fd);
        nb->cg_fd = -1;
    }
    rc = 0;
done:
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    arg_free(&av);
    return rc;
}

/* Follows the shim: its pidfd and start time, recorded in the group's
 * .shims (for cleanup and reattach). */
static int follow_shim(node_build_t *nb, jg_error_t *err)
{
    nb->pidfd = jg_proc_pidfd_open(nb->pid);
    if (nb->pidfd < 0 || jg_proc_starttime(nb->pid, &nb->start) < 0)
        return jg_errprintf(err, "cannot follow the shim (pid %d): %s", (int)nb->pid,
                            strerror(errno));
    return record_shim(nb->gdir, strrchr(nb->dir, '/') + 1, nb->ref->attempt, nb->pid,
                       nb->start, nb->n_gpus ? nb->gpu_list : NULL, err);
}

/* The node record takes over what was built (pidfd, watch, GPUs, cgroup), and
 * NODE_STARTED is queued with its handle and address. */
static int add_node_record(node_build_t *nb, jg_error_t *err)
{
    local_t *b = nb->b;
    const jg_node_ref_t *ref = nb->ref;
    node_t *n = node_new(b, nb->req->group_id, ref->job_index, ref->rank, ref->attempt, nb->dir);
    n->pid = nb->pid;
    n->start = nb->start;
    n->is_child = true;
    n->offset = nb->status_st.st_size;
    n->wd = nb->wd;
    n->pidfd = nb->pidfd;
    n->errfd = nb->errpipe[0];
    if (jg_loop_add_fd(b->loop, nb->pidfd, EPOLLIN, on_pidfd, n, err) < 0) {
        free(n->dir);
        free(n);
        return -1;
    }
    nb->errpipe[0] = -1;
    if (nb->n_gpus) {
        n->gpus = jg_xmalloc(nb->n_gpus * sizeof *n->gpus);
        memcpy(n->gpus, nb->gpus, nb->n_gpus * sizeof *n->gpus);
        n->n_gpus = nb->n_gpus;
        nb->n_gpus = 0;
    }
    n->cgroup = nb->cg;
    nb->cg = NULL;
    node_link(b, n);
    const char *address = nb->ips[ref->rank];
    char *handle = jg_xasprintf("pid=%d start=%llu addr=%s dir=%s", (int)nb->pid, nb->start,
                                address, nb->dir);
    queue_event(b, JG_BACKEND_NODE_STARTED, nb->req->group_id, ref->job_index, ref->rank,
                ref->attempt, NULL, handle, false, 0, 0)->address = jg_xstrdup(address);
    free(handle);
    nb->pid = -1;
    nb->pidfd = -1;
    nb->wd = -1;
    return 0;
}

/* Undoes what was built and not handed to a node record, and frees it. */
static void node_build_free(node_build_t *nb)
{
    local_t *b = nb->b;
    if (nb->pid > 0) {          /* started but cannot be followed: undo (a SIGKILLed
                                 * child of ours: the wait ends at once) */
        (void)jg_proc_kill(nb->pid, SIGKILL);
        while (waitpid(nb->pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (nb->pidfd >= 0)
        close(nb->pidfd);
    if (nb->wd >= 0) {
        bool shared = false;
        for (node_t *o = b->nodes; o; o = o->next)
            if (o->wd == nb->wd)
                shared = true;
        if (!shared)
            inotify_rm_watch(b->inotify_fd, nb->wd);
    }
    for (int i = 0; i < 2; i++)
        if (nb->errpipe[i] >= 0)
            close(nb->errpipe[i]);
    if (nb->cg_fd >= 0)
        close(nb->cg_fd);
    if (nb->tmp_fd >= 0)
        close(nb->tmp_fd);
    jg_gpu_pool_release(b->gpus, nb->gpus, nb->n_gpus);     /* not handed to a node */
    if (nb->cg)
        (void)rmdir(nb->cg);
    free(nb->cg);
    free(nb->binds);
    free(nb->gpu_log);
    for (size_t i = 0; i < nb->n_forced; i++)
        free(nb->forced[i]);
    free(nb->ips);
    free(nb->tmp);
    free(nb->dir);
    free(nb->gdir);
}

/* Writes one node's files and starts its shim.  Fails with nothing started.
 * The steps, in order, are what a node gets. */
static int launch_one(local_t *b, const jg_launch_t *req, const jg_node_ref_t *ref,
                      const creds_t *creds, const struct passwd *pw, const group_net_t *gnet,
                      jg_error_t *err)
{
    const jg_job_spec_t *job = &req->spec->jobs[ref->job_index];
    node_build_t nb = {
        .b = b, .req = req, .ref = ref, .job = job, .creds = creds, .pw = pw, .gnet = gnet,
        .gdir = group_dir(b, req->group_id),
        .dir = node_dir(b, req->group_id, job->name, ref->rank),
        .tmp_fd = -1, .cg_fd = -1, .wd = -1, .errpipe = {-1, -1}, .pid = -1, .pidfd = -1,
    };
    int rc = make_node_dirs(&nb, err) < 0 ||    /* directory, work */
             make_node_tmp(&nb, err) < 0 ||     /* its own /tmp */
             check_volumes(&nb, err) < 0 ||     /* volumes, their mount points */
             take_gpus(&nb, err) < 0 ||         /* GPUs, by index */
             make_cgroup(&nb, err) < 0 ||       /* cgroup: cpus, memory */
             write_env(&nb, err) < 0 ||         /* environment */
             write_scripts(&nb, err) < 0 ||     /* setup, run, workdir */
             make_barrier(&nb, err) < 0 ||      /* the release FIFO */
             open_output_log(&nb, err) < 0 ||   /* output.log, attempts */
             watch_status(&nb, err) < 0 ||      /* status, watched */
             spawn_node(&nb, err) < 0 ||        /* network, namespaces, user: the shim */
             follow_shim(&nb, err) < 0 ||       /* pidfd, .shims */
             add_node_record(&nb, err) < 0      /* NODE_STARTED */
                 ? -1 : 0;
    node_build_free(&nb);
    return rc;
}

/* ---- launches, spread over loop turns -------------------------------------
 *
 * Starting a node costs a spawn and a few file writes; a launch of hundreds
 * of nodes done in one go would hold the loop (every client, every other
 * group) for its whole length.  launch() starts at most LAUNCH_BATCH nodes
 * and queues the rest (with copies of what the request only lent it); a
 * timer starts the next LAUNCH_BATCH on each later loop turn, oldest launch
 * first, so the events of all launches keep the order of their nodes.  The
 * timer waits 1 ms rather than 0: the loop runs every timer that is due
 * before it looks at descriptors again, and a zero-delay timer armed from a
 * timer can be due at once.  stop() of a group first starts its queued
 * nodes (so they are stopped like the rest), cleanup() drops them. */

#define LAUNCH_BATCH 16             /* nodes started per loop turn, at most */
#define LAUNCH_NEXT_MS 1

struct launch_job {
    launch_job_t *next;
    jg_launch_t req;            /* points at the copies below once queued */
    jg_group_spec_t *spec;      /* owned copies (NULL while the caller's are used) */
    char *user;
    jg_node_ref_t *nodes;
    jg_kv_t *volumes;
    size_t next_node;           /* the first node not started yet */
    creds_t creds;
    struct passwd pwbuf, *pw;   /* pw: &pwbuf or NULL */
    char pwstr[4096];
    bool net_ok;                /* the group's network is set up */
    jg_error_t neterr;          /* !net_ok: why */
    group_net_t gnet;
    char *hosts, *resolv;       /* gnet's paths */
};

static void launch_job_free(launch_job_t *j)
{
    if (j->spec)
        jg_spec_free(j->spec);
    free(j->user);
    free(j->nodes);
    for (size_t i = 0; j->volumes && i < j->req.n_volumes; i++) {
        free(j->volumes[i].key);
        free(j->volumes[i].value);
    }
    free(j->volumes);
    free(j->hosts);
    free(j->resolv);
    free(j);
}

/* Makes the job independent of the caller's request (to be finished on later
 * turns); false if the spec cannot be copied. */
static bool launch_job_own(launch_job_t *j)
{
    jg_error_t e;
    char *json = jg_spec_to_json(j->req.spec);
    j->spec = json ? jg_spec_from_json(json, &e) : NULL;
    free(json);
    if (!j->spec)
        return false;
    j->req.spec = j->spec;
    j->user = j->req.user ? jg_xstrdup(j->req.user) : NULL;
    j->req.user = j->user;
    j->nodes = jg_xcalloc(j->req.n_nodes ? j->req.n_nodes : 1, sizeof *j->nodes);
    memcpy(j->nodes, j->req.nodes, j->req.n_nodes * sizeof *j->nodes);
    j->req.nodes = j->nodes;
    if (j->req.volumes) {
        j->volumes = jg_xcalloc(j->req.n_volumes ? j->req.n_volumes : 1, sizeof *j->volumes);
        for (size_t i = 0; i < j->req.n_volumes; i++)
            j->volumes[i] = (jg_kv_t){.key = jg_xstrdup(j->req.volumes[i].key),
                                      .value = jg_xstrdup(j->req.volumes[i].value)};
        j->req.volumes = j->volumes;
    }
    return true;       /* pw, if set, is &pwbuf, whose strings are in pwstr: ours already */
}

/* Whether the job's nodes wait for their group's network, whose keeper is
 * still setting it up (launches_net_settled() lets them go). */
static bool net_waiting(local_t *b, const launch_job_t *j)
{
    if (!j->net_ok || !isolated(b))
        return false;
    gnet_t *g = gnet_find(b, j->req.group_id);
    return g && g->hub.ready_fd >= 0;
}

/* Starts up to max of the job's remaining nodes; returns how many it took. */
static size_t launch_nodes(local_t *b, launch_job_t *j, size_t max)
{
    const jg_launch_t *req = &j->req;
    size_t done = 0;
    if (net_waiting(b, j))
        return 0;
    if (j->net_ok && isolated(b)) {
        /* On a later turn the keeper may have died meanwhile. */
        gnet_t *g = gnet_find(b, req->group_id);
        if (g) {
            j->gnet.hub_pidfd = g->hub.pidfd;
        } else {
            j->net_ok = false;
            jg_errprintf(&j->neterr, "the group's network is gone (its keeper died while "
                         "the group was being launched)");
        }
    }
    for (; j->next_node < req->n_nodes && done < max; j->next_node++, done++) {
        const jg_node_ref_t *r = &req->nodes[j->next_node];
        jg_error_t e = {{0}};
        if (!j->net_ok)
            jg_errprintf(&e, "cannot set up the group's network: %s", j->neterr.text);
        if (!j->net_ok || launch_one(b, req, r, &j->creds, j->pw, &j->gnet, &e) < 0)
            queue_event(b, JG_BACKEND_LAUNCH_FAILED, req->group_id, r->job_index, r->rank,
                        r->attempt, e.text, NULL, false, 0, 0);
    }
    return done;
}

static void on_launch_timer(jg_loop_t *loop, void *arg);

/* Starts up to max queued nodes, oldest launch first, passing over those
 * that wait for their network; re-arms the timer while some that can start
 * are left. */
static void launch_queued(local_t *b, size_t max)
{
    bool more = false;
    for (launch_job_t **pp = &b->launches; *pp;) {
        launch_job_t *j = *pp;
        if (net_waiting(b, j)) {
            pp = &j->next;
            continue;
        }
        if (max > 0)
            max -= launch_nodes(b, j, max);
        if (j->next_node == j->req.n_nodes) {
            *pp = j->next;
            launch_job_free(j);
            continue;
        }
        more = true;
        pp = &j->next;
    }
    if (more && !b->launch_timer)
        b->launch_timer = jg_loop_add_timer(b->loop, LAUNCH_NEXT_MS, on_launch_timer, b);
}

void launches_net_settled(local_t *b, int64_t group_id, const char *failure)
{
    for (launch_job_t *j = b->launches; j; j = j->next)
        if (j->req.group_id == group_id && failure && j->net_ok) {
            j->net_ok = false;
            jg_errprintf(&j->neterr, "%s", failure);
        }
    launch_queued(b, LAUNCH_BATCH);
}

static void on_launch_timer(jg_loop_t *loop, void *arg)
{
    (void)loop;
    local_t *b = arg;
    b->launch_timer = 0;
    launch_queued(b, LAUNCH_BATCH);
}

static bool group_queued(const local_t *b, int64_t group_id)
{
    for (launch_job_t *j = b->launches; j; j = j->next)
        if (j->req.group_id == group_id)
            return true;
    return false;
}

void launches_finish(local_t *b, int64_t group_id)
{
    gnet_t *g = gnet_find(b, group_id);
    if (g && group_queued(b, group_id))
        gnet_wait_setup(g);     /* rare: stopped within the few ms its network takes */
    while (group_queued(b, group_id))
        launch_queued(b, LAUNCH_BATCH);
}

void launches_drop(local_t *b, int64_t group_id)
{
    for (launch_job_t **pp = &b->launches; *pp;) {
        launch_job_t *j = *pp;
        if (j->req.group_id == group_id) {
            *pp = j->next;
            launch_job_free(j);
        } else {
            pp = &j->next;
        }
    }
    if (!b->launches && b->launch_timer) {
        jg_loop_cancel_timer(b->loop, b->launch_timer);
        b->launch_timer = 0;
    }
}

void launches_free(local_t *b)
{
    while (b->launches) {
        launch_job_t *j = b->launches;
        b->launches = j->next;
        launch_job_free(j);
    }
    if (b->launch_timer)
        jg_loop_cancel_timer(b->loop, b->launch_timer);
    b->launch_timer = 0;
}

/* The group's network first (its hub, its hosts file): every node joins it. */
static void prepare_group_net(local_t *b, launch_job_t *j)
{
    const jg_launch_t *req = &j->req;
    group_net_t *gnet = &j->gnet;
    char *gdir = group_dir(b, req->group_id);
    gnet->hub_pidfd = -1;
    j->net_ok = true;
    if ((isolated(b) || b->net.own_mounts) && jg_mkdir_p(gdir, 0711, &j->neterr) < 0)
        j->net_ok = false;
    if (j->net_ok && isolated(b)) {
        gnet_t *g = group_hub(b, req->group_id, &j->neterr);
        j->net_ok = g != NULL;
        if (g)
            gnet->hub_pidfd = g->hub.pidfd;
    }
    if (j->net_ok && b->net.own_mounts) {
        const creds_t none = {0};
        char *hosts = jg_netns_hosts(req->spec, isolated(b));
        j->net_ok = write_file(&none, gdir, GROUP_HOSTS, hosts, strlen(hosts), 0644,
                               &j->neterr) == 0;
        free(hosts);
        j->hosts = jg_xasprintf("%s/" GROUP_HOSTS, gdir);
        gnet->hosts_path = j->hosts;
    }
    if (j->net_ok && b->nat && b->net.own_mounts) {
        /* Read at each launch: the host's resolvers may have changed since. */
        char host[8192], upstream[8192];
        const creds_t none = {0};
        bool have_host = read_small("/etc/resolv.conf", host, sizeof host) >= 0;
        bool have_up = read_small("/run/systemd/resolve/resolv.conf", upstream,
                                  sizeof upstream) >= 0;
        char *text = jg_netns_resolv_conf(have_host ? host : NULL, have_up ? upstream : NULL);
        j->net_ok = write_file(&none, gdir, GROUP_RESOLV, text, strlen(text), 0644,
                               &j->neterr) == 0;
        free(text);
        j->resolv = jg_xasprintf("%s/" GROUP_RESOLV, gdir);
        gnet->resolv_path = j->resolv;
    }
    free(gdir);
}

int local_launch(jg_backend_t *base, const jg_launch_t *req, jg_error_t *err)
{
    local_t *b = base->impl;
    if (!req || !req->spec || !req->spec->name || (!req->nodes && req->n_nodes))
        return jg_errprintf(err, "launch: incomplete request");
    for (size_t i = 0; i < req->n_nodes; i++) {
        const jg_node_ref_t *r = &req->nodes[i];
        if (r->job_index < 0 || (size_t)r->job_index >= req->spec->n_jobs)
            return jg_errprintf(err, "launch: group %" PRId64 " has no job %d", req->group_id,
                                r->job_index);
        const jg_job_spec_t *job = &req->spec->jobs[r->job_index];
        if (!job->name || strchr(job->name, '/') || job->name[0] == '.')
            return jg_errprintf(err, "launch: bad job name in group %" PRId64, req->group_id);
        if (r->rank < 0 || r->rank >= job->num_nodes)
            return jg_errprintf(err, "launch: job %s of group %" PRId64 " has no rank %d",
                                job->name, req->group_id, r->rank);
        if (r->attempt < 1)
            return jg_errprintf(err, "launch: bad attempt %d for %s-%d", r->attempt, job->name,
                                r->rank);
    }

    launch_job_t *j = jg_xcalloc(1, sizeof *j);
    j->req = *req;
    if (req->user)
        getpwnam_r(req->user, &j->pwbuf, j->pwstr, sizeof j->pwstr, &j->pw);
    if (!j->pw)
        getpwuid_r(req->uid, &j->pwbuf, j->pwstr, sizeof j->pwstr, &j->pw);
    if (req->uid != geteuid() || req->gid != getegid()) {
        if (geteuid() != 0) {
            free(j);
            return jg_errprintf(err, "launch: cannot run nodes as uid %d: the daemon runs "
                                "unprivileged as uid %d", (int)req->uid, (int)geteuid());
        }
        j->creds.active = true;
        j->creds.uid = req->uid;
        j->creds.gid = req->gid;
        j->creds.n_groups = MAX_GROUPS;
        if (!j->pw ||
            getgrouplist(j->pw->pw_name, req->gid, j->creds.groups, &j->creds.n_groups) < 0) {
            j->creds.groups[0] = req->gid;
            j->creds.n_groups = 1;
        }
    }

    if (cleanup_running(b, req->group_id)) {
        /* Its cleanup would take the new nodes' network and files away. */
        j->net_ok = false;
        jg_errprintf(&j->neterr, "group %" PRId64 " is being cleaned up", req->group_id);
    } else {
        prepare_group_net(b, j);
    }

    /* No node waits for another; at most LAUNCH_BATCH start now, and none
     * before those of an earlier launch still queued. */
    if (!b->launches)
        launch_nodes(b, j, LAUNCH_BATCH);
    if (j->next_node < req->n_nodes && !launch_job_own(j)) {
        jg_log("warn", "group %" PRId64 ": cannot copy the launch request; starting its "
               "%zu nodes at once", req->group_id, req->n_nodes - j->next_node);
        gnet_t *g = isolated(b) ? gnet_find(b, req->group_id) : NULL;
        if (g)
            gnet_wait_setup(g);     /* the request is only lent: no later turn */
        launch_nodes(b, j, req->n_nodes);
    }
    if (j->next_node == req->n_nodes) {
        launch_job_free(j);
        return 0;
    }
    launch_job_t **tail = &b->launches;
    while (*tail)
        tail = &(*tail)->next;
    *tail = j;
    launch_queued(b, 0);        /* arms the timer */
    return 0;
}
