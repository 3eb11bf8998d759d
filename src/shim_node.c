/* shim_node.c - `jgsched-shim --node`: a node's first process becomes the
 * node, then execs the shim (shim_node.h has the arguments and why).
 *
 * It starts as the daemon's user with the daemon's descriptors; everything it
 * is told comes from the daemon's argv.  The order of the steps is the
 * security argument: the cgroup and the namespaces are entered while
 * privileged, /tmp is checked to be the directory the daemon opened (the user
 * owns the node directory and may have swapped tmp for a link meanwhile), and
 * only then are the user's credentials taken and no_new_privs set, so nothing
 * the shim or the job executes can gain privileges.
 */
#include "shim_node.h"

#include "jgsched/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    int err, shim, hub, cg, tmpfd;
    const char *cgpath;
    bool switch_user;
    uid_t uid;
    gid_t gid;
    gid_t groups[JG_SHIM_NODE_MAX_GROUPS];
    int n_groups;
    jg_netns_node_t plan;
    char **shim_argv;
} node_args_t;

static __attribute__((noreturn)) void die(int errw, const char *msg)
{
    if (errw >= 0)
        (void)!write(errw, msg, strlen(msg));
    _exit(JG_SHIM_NODE_EXIT);
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_fd(const char *s, int *fd)
{
    long v;
    if (!parse_long(s, 0, INT_MAX, &v) || fcntl((int)v, F_GETFD) < 0)
        return false;
    *fd = (int)v;
    return true;
}

/* "UID:GID:G1,G2,..." (no groups: "UID:GID:"). */
static bool parse_user(const char *s, node_args_t *a)
{
    char *end;
    errno = 0;
    unsigned long uid = strtoul(s, &end, 10);
    if (errno || end == s || *end != ':')
        return false;
    s = end + 1;
    unsigned long gid = strtoul(s, &end, 10);
    if (errno || end == s || *end != ':')
        return false;
    a->uid = (uid_t)uid;
    a->gid = (gid_t)gid;
    a->n_groups = 0;
    for (s = end + 1; *s;) {
        unsigned long g = strtoul(s, &end, 10);
        if (errno || end == s || (*end && *end != ',') || a->n_groups == JG_SHIM_NODE_MAX_GROUPS)
            return false;
        a->groups[a->n_groups++] = (gid_t)g;
        s = *end ? end + 1 : end;
    }
    a->switch_user = true;
    return true;
}

/* Parses argv[2...] into a; the binds go into binds (room for argc).  Returns
 * NULL, or what is wrong (the error pipe may not be known yet). */
static const char *parse(int argc, char **argv, node_args_t *a, jg_netns_bind_t *binds)
{
    *a = (node_args_t){.err = -1, .shim = -1, .hub = -1, .cg = -1, .tmpfd = -1};
    a->plan.binds = binds;
    bool have_src = false;
    long v;
    int i = 2;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return "an argument is not KEY=VALUE";
        *eq = '\0';
        const char *key = argv[i], *val = eq + 1;
        bool ok = true;
        if (strcmp(key, "err") == 0)
            ok = parse_fd(val, &a->err);
        else if (strcmp(key, "shim") == 0)
            ok = parse_fd(val, &a->shim);
        else if (strcmp(key, "hub") == 0)
            ok = parse_fd(val, &a->hub);
        else if (strcmp(key, "cg") == 0)
            ok = parse_fd(val, &a->cg);
        else if (strcmp(key, "tmpfd") == 0)
            ok = parse_fd(val, &a->tmpfd);
        else if (strcmp(key, "cgpath") == 0)
            a->cgpath = val;
        else if (strcmp(key, "mode") == 0 && (ok = parse_long(val, 0, 2, &v)))
            a->plan.mode = (jg_netns_mode_t)v;
        else if (strcmp(key, "mounts") == 0 && (ok = parse_long(val, 0, 1, &v)))
            a->plan.own_mounts = v == 1;
        else if (strcmp(key, "index") == 0 && (ok = parse_long(val, -1, INT_MAX, &v)))
            a->plan.index = (int)v;
        else if (strcmp(key, "host") == 0)
            a->plan.hostname = val;
        else if (strcmp(key, "hosts") == 0)
            a->plan.hosts_path = val;
        else if (strcmp(key, "resolv") == 0)
            a->plan.resolv_path = val;
        else if (strcmp(key, "route") == 0 && (ok = parse_long(val, 0, 1, &v)))
            a->plan.default_route = v == 1;
        else if (strcmp(key, "tmp") == 0)
            a->plan.tmp_path = val;
        else if (strcmp(key, "keep") == 0)
            a->plan.keep_path = val;
        else if (strcmp(key, "uid") == 0 && (ok = parse_long(val, 0, UINT_MAX, &v)))
            a->plan.uid = (uid_t)v;
        else if (strcmp(key, "gid") == 0 && (ok = parse_long(val, 0, UINT_MAX, &v)))
            a->plan.gid = (gid_t)v;
        else if (strcmp(key, "user") == 0)
            ok = parse_user(val, a);
        else if (strcmp(key, "src") == 0 && !have_src) {
            binds[a->plan.n_binds].source = val;
            have_src = true;
        } else if (strcmp(key, "dst") == 0 && have_src) {
            binds[a->plan.n_binds++].target = val;
            have_src = false;
        } else if (ok) {
            return "an unknown argument";
        }
        *eq = '=';
        if (!ok)
            return "a bad argument value";
    }
    if (have_src)
        return "a volume without its dst";
    if (a->err < 0 || a->shim < 0 || i + 1 >= argc || !a->plan.hostname)
        return "err, shim, host or the shim's argv missing";
    a->shim_argv = &argv[i + 1];
    return NULL;
}

/* Closes every descriptor from 3 on but a and b. */
static void close_all_but(int a, int b)
{
    unsigned lo = (unsigned)(a < b ? a : b), hi = (unsigned)(a < b ? b : a);
    if (lo > 3)
        syscall(SYS_close_range, 3u, lo - 1, 0u);
    if (hi > lo + 1)
        syscall(SYS_close_range, lo + 1, hi - 1, 0u);
    syscall(SYS_close_range, hi + 1, ~0u, 0u);
}

static __attribute__((noreturn)) void become_node(const node_args_t *a)
{
    char msg[400];
    int errw = a->err;
    /* They came through posix_spawn without close-on-exec: the error pipe
     * must end when the shim is executed (that is how the daemon knows). */
    (void)fcntl(errw, F_SETFD, FD_CLOEXEC);
    (void)fcntl(a->shim, F_SETFD, FD_CLOEXEC);
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);       /* nothing the daemon ignores reaches the node */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (getsid(0) != getpid() && setsid() < 0) {
        snprintf(msg, sizeof msg, "setsid: %s", strerror(errno));
        die(errw, msg);
    }
    if (a->cg >= 0 && write(a->cg, "0", 1) != 1) {
        snprintf(msg, sizeof msg, "cannot join the node's cgroup %s: %s",
                 a->cgpath ? a->cgpath : "?", strerror(errno));
        die(errw, msg);
    }
    if (a->cg >= 0)
        close(a->cg);
    bool namespaces = a->plan.mode != JG_NETNS_HOST || a->plan.own_mounts;
    jg_netns_node_t plan = a->plan;
    plan.hub_pidfd = a->hub;
    if (namespaces && jg_netns_node_enter(&plan, msg, sizeof msg) < 0)
        die(errw, msg);
    /* The user owns the node directory and may have swapped tmp for a
     * link since we checked it: nothing of ours may run over a /tmp
     * that is not the directory we opened (no process but us sees it). */
    struct stat want, got;
    if (a->tmpfd >= 0 && (fstat(a->tmpfd, &want) < 0 || stat("/tmp", &got) < 0 ||
                          want.st_dev != got.st_dev || want.st_ino != got.st_ino)) {
        snprintf(msg, sizeof msg, "refusing %s: it was replaced while the node was being "
                 "set up", a->plan.tmp_path ? a->plan.tmp_path : "the node's /tmp");
        die(errw, msg);
    }
    if (a->switch_user &&
        (setgroups((size_t)a->n_groups, a->groups) < 0 || setgid(a->gid) < 0 ||
         setuid(a->uid) < 0)) {
        snprintf(msg, sizeof msg, "cannot become uid %d gid %d: %s", (int)a->uid,
                 (int)a->gid, strerror(errno));
        die(errw, msg);
    }
    /* A node may lay its volumes over any directory of its own mount
     * namespace (/etc included), so a set-user-ID program run there would
     * trust files the user wrote: like a container runtime's
     * no-new-privileges, no exec from here on gains privileges. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        snprintf(msg, sizeof msg, "cannot set no_new_privs: %s", strerror(errno));
        die(errw, msg);
    }
    /* Everything but the error pipe and the shim, which exec closes. */
    close_all_but(errw, a->shim);
    char *envp[] = {NULL};
    syscall(SYS_execveat, a->shim, "", a->shim_argv, envp, AT_EMPTY_PATH);
    snprintf(msg, sizeof msg, "cannot execute %s: %s", a->shim_argv[0], strerror(errno));
    die(errw, msg);
}

int jg_shim_node_main(int argc, char **argv)
{
    jg_netns_bind_t binds[argc > 0 ? argc : 1];
    node_args_t a;
    const char *bad = parse(argc, argv, &a, binds);
    if (bad) {
        char msg[160];
        snprintf(msg, sizeof msg, "jgsched-shim --node: %s (it is started by jgschedd only)",
                 bad);
        if (a.err < 0) {
            fprintf(stderr, "%s\n", msg);
            return 2;
        }
        die(a.err, msg);
    }
    become_node(&a);
}
