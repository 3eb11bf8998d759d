/* netns.c - per-node network, hostname, /etc/hosts and /tmp for the local backend.
 *
 * Why this shape (include/jgsched/netns.h has the contract):
 *
 *  - Speed: links and addresses are made over a raw rtnetlink socket, one
 *    message each, never one `ip` process per step; a 7-node group's network
 *    is a handful of syscalls per node (bench/bench_netns.c measures it).
 *  - Nothing leaks: every namespace is held by a process (the group's keeper
 *    for the hub, a node's own processes for its namespaces), never by a bind
 *    mount, so killing the processes removes everything, the veth pairs too.
 *  - Nothing collides: no object is named in the host, so two daemons (each
 *    with a group 1) or two groups with the same name live side by side.
 *    The one exception, a hub's uplink (NAT), is named after the address it
 *    holds, so the kernel's "name exists" is the lock on that address.
 *  - Volumes: a node's shared volumes are bind mounts in its own mount
 *    namespace, made after its /tmp; the mount point is reached without
 *    following symbolic links (jg_fs_open_dir), since a node may plant one
 *    in its /tmp, kept across attempts, to redirect a later root-made mount;
 *    root creates a missing one only inside the node's own /tmp.
 *  - Works unprivileged: in mode USERNS the keeper owns a user namespace in
 *    which the daemon's user has every capability (it created it), so a
 *    node's child can join it and do as root would, without being root.
 *
 * Netlink sockets belong to the network namespace they were created in; the
 * node child opens one in the hub, then unshares its own namespace and uses
 * that socket to create the veth pair with its peer directly in the new
 * namespace (IFLA_NET_NS_FD), then a second socket to configure the inside.
 */
#include "jgsched/netns.h"
#include "jgsched/proc.h"
#include "netns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ------------------------------------------------------ */

static int sys_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0u);
}


int jg_netns_node_index(const jg_group_spec_t *spec, int job_index, int rank)
{
    if (!spec || job_index < 0 || (size_t)job_index >= spec->n_jobs || rank < 0 ||
        rank >= spec->jobs[job_index].num_nodes)
        return -1;
    long index = rank;
    for (int j = 0; j < job_index; j++)
        index += spec->jobs[j].num_nodes;
    return index < JG_NETNS_MAX_NODES ? (int)index : -1;
}

char *jg_netns_hosts(const jg_group_spec_t *spec, bool isolated)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        abort();
    fprintf(f, "# jgsched: the hosts of group %s%s\n", spec->name,
            isolated ? "" : " (shared host network: every node is 127.0.0.1)");
    fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    int index = 0;
    for (size_t j = 0; j < spec->n_jobs; j++) {
        for (int r = 0; r < spec->jobs[j].num_nodes; r++, index++) {
            char ip[32] = "127.0.0.1";
            if (isolated && jg_netns_node_address(index, ip, sizeof ip) < 0)
                continue;
            fprintf(f, "%s\t%s-%d.%s %s-%d\n", ip, spec->jobs[j].name, r, spec->name,
                    spec->jobs[j].name, r);
        }
    }
    if (fclose(f) != 0 || !buf)
        abort();
    return buf;
}

/* A "nameserver" line whose address is on loopback (127/8, ::1). */
static bool loopback_nameserver(const char *line, size_t n)
{
    const char *p = line, *e = line + n;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    if ((size_t)(e - p) < 10 || strncmp(p, "nameserver", 10) != 0)
        return false;
    p += 10;
    if (p < e && *p != ' ' && *p != '\t')
        return false;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return (e - p >= 4 && strncmp(p, "127.", 4) == 0) ||
           (e - p >= 3 && strncmp(p, "::1", 3) == 0 &&
            (e - p == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\r'));
}

/* Appends text without loopback nameservers to f; returns how many
 * nameservers were kept. */
static int copy_resolv(FILE *f, const char *text)
{
    int kept = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        const char *p = line;
        while (p < line + n && (*p == ' ' || *p == '\t'))
            p++;
        if (loopback_nameserver(line, n))
            fprintf(f, "# (left out: on the host's loopback) %.*s\n", (int)n, line);
        else {
            fprintf(f, "%.*s\n", (int)n, line);
            kept += (size_t)(line + n - p) > 10 && strncmp(p, "nameserver", 10) == 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return kept;
}

char *jg_netns_resolv_conf(const char *host_resolv, const char *upstream)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        abort();
    fprintf(f, "# jgsched: the host's resolv.conf, less what a node cannot reach\n");
    int kept = copy_resolv(f, host_resolv);
    if (kept == 0 && upstream) {
        fprintf(f, "# the host's resolver forwards to:\n");
        copy_resolv(f, upstream);
    }
    if (fclose(f) != 0 || !buf)
        abort();
    return buf;
}

/* ---- the hub ------------------------------------------------------------ */

int jg_netns_hub_start(const char *keeper_exe, jg_netns_mode_t mode,
                       const jg_netns_uplink_t *uplink, const char *label, jg_netns_hub_t *hub,
                       jg_error_t *err)
{
    hub->pid = -1;
    hub->pidfd = -1;
    hub->ready_fd = -1;
    hub->start = 0;
    if (mode == JG_NETNS_HOST)
        return jg_errprintf(err, "group network: no namespaces in mode HOST");
    if (uplink && mode != JG_NETNS_ROOT)
        return jg_errprintf(err, "group network: an uplink (NAT) needs a daemon running as root");
    char network[INET_ADDRSTRLEN + 4] = "-";
    if (uplink) {
        struct in_addr a = {.s_addr = htonl(uplink->network)};
        char addr[INET_ADDRSTRLEN];
        if (!inet_ntop(AF_INET, &a, addr, sizeof addr))
            return jg_errprintf(err, "group network: bad uplink network");
        snprintf(network, sizeof network, "%s/%d", addr, uplink->prefix);
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
        return jg_errprintf(err, "group network: pipe: %s", strerror(errno));
    /* The keeper writes the reason of a failure in one write of at most
     * JG_NETNS_KEEPER_MSG bytes (atomic on a pipe) on descriptor 3, or
     * closes it once the hub is up: jg_netns_hub_ready reads it whole or
     * sees the end of the pipe.  posix_spawn does not copy the daemon. */
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 3);
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSID);
    char *argv[] = {"jgsched-keeper", mode == JG_NETNS_ROOT ? "root" : "userns", network,
                    label ? "--hold" : NULL, (char *)label, NULL};
    char *envp[] = {NULL};
    pid_t pid;
    int e = posix_spawn(&pid, keeper_exe, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[1]);
    if (e != 0) {
        close(pipefd[0]);
        return jg_errprintf(err, "group network: cannot start the keeper %s: %s", keeper_exe,
                            strerror(e));
    }
    /* Our unreaped child: its pid cannot be reused until we wait for it. */
    hub->pidfd = jg_proc_pidfd_open(pid);
    if (hub->pidfd < 0 || jg_proc_starttime(pid, &hub->start) < 0) {
        jg_errprintf(err, "group network: cannot follow the keeper (pid %d): %s", (int)pid,
                     strerror(errno));
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (hub->pidfd >= 0)
            close(hub->pidfd);
        hub->pidfd = -1;
        close(pipefd[0]);
        return -1;
    }
    hub->pid = pid;
    hub->ready_fd = pipefd[0];
    return 0;
}

int jg_netns_hub_ready(jg_netns_hub_t *hub, int wait_ms, jg_error_t *err)
{
    if (hub->ready_fd < 0)
        return 1;
    struct pollfd pfd = {.fd = hub->ready_fd, .events = POLLIN};
    int r;
    while ((r = poll(&pfd, 1, wait_ms < 0 ? 0 : wait_ms)) < 0 && errno == EINTR)
        ;
    if (r == 0)
        return 0;
    char msg[JG_NETNS_KEEPER_MSG + 1];
    ssize_t n;
    while ((n = read(hub->ready_fd, msg, JG_NETNS_KEEPER_MSG)) < 0 && errno == EINTR)
        ;
    if (n < 0 && errno == EAGAIN)
        return 0;
    close(hub->ready_fd);
    hub->ready_fd = -1;
    if (n == 0)
        return 1;
    msg[n > 0 ? n : 0] = '\0';
    return jg_errprintf(err, "group network: %s", n > 0 ? msg : strerror(errno));
}

int jg_netns_hub_create(const char *keeper_exe, jg_netns_mode_t mode,
                        const jg_netns_uplink_t *uplink, const char *label, jg_netns_hub_t *hub,
                        jg_error_t *err)
{
    if (jg_netns_hub_start(keeper_exe, mode, uplink, label, hub, err) < 0)
        return -1;
    int r;
    while ((r = jg_netns_hub_ready(hub, 1000, err)) == 0)
        ;
    if (r < 0) {
        jg_netns_hub_destroy(hub, 5000, NULL);
        return -1;
    }
    return 0;
}

int jg_netns_hub_open(pid_t pid, unsigned long long start, jg_netns_hub_t *hub, jg_error_t *err)
{
    hub->pid = -1;
    hub->pidfd = -1;
    hub->ready_fd = -1;
    hub->start = 0;
    if (pid <= 0)
        return jg_errprintf(err, "group network: no keeper recorded");
    /* pidfd first, then the start time: if it matches, the pidfd is the keeper. */
    int fd = jg_proc_pidfd_open(pid);
    unsigned long long now = 0;
    if (fd < 0 || jg_proc_starttime(pid, &now) < 0 || now != start) {
        if (fd >= 0)
            close(fd);
        return jg_errprintf(err, "group network: its keeper (pid %d) is gone", (int)pid);
    }
    hub->pid = pid;
    hub->start = start;
    hub->pidfd = fd;
    return 0;
}

void jg_netns_hub_close(jg_netns_hub_t *hub)
{
    if (!hub)
        return;
    if (hub->pidfd >= 0)
        close(hub->pidfd);
    if (hub->ready_fd >= 0)
        close(hub->ready_fd);
    hub->pidfd = -1;
    hub->ready_fd = -1;
}

int jg_netns_hub_destroy(jg_netns_hub_t *hub, int wait_ms, jg_error_t *err)
{
    if (!hub || hub->pidfd < 0)
        return 0;
    int rc = 0;
    sys_pidfd_send_signal(hub->pidfd, SIGKILL);
    struct pollfd pfd = {.fd = hub->pidfd, .events = POLLIN};
    int r;
    while ((r = poll(&pfd, 1, wait_ms)) < 0 && errno == EINTR)
        ;
    if (r == 1) {
        siginfo_t si;
        (void)waitid(P_PIDFD, (id_t)hub->pidfd, &si, WEXITED | WNOHANG);   /* ECHILD: not ours */
    } else {
        rc = jg_errprintf(err, "group network: keeper pid %d did not die within %d ms",
                          (int)hub->pid, wait_ms);
    }
    jg_netns_hub_close(hub);
    return rc;
}

int jg_netns_kill_members(int nsfd)
{
    struct stat ns, own;
    if (fstat(nsfd, &ns) < 0)
        return 0;
    /* Never our own namespace (the host's, for the daemon): that would be
     * every process we may signal. */
    if (stat("/proc/self/ns/net", &own) < 0 || (own.st_ino == ns.st_ino && own.st_dev == ns.st_dev))
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int killed = 0;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%ld/ns/net", pid);
        if (stat(path, &st) == 0 && st.st_ino == ns.st_ino && st.st_dev == ns.st_dev &&
            kill((pid_t)pid, SIGKILL) == 0)
            killed++;
    }
    closedir(d);
    return killed;
}

/* ---- probe -------------------------------------------------------------- */

/* In the probe child: can we make a hub and a node, as the real thing does? */
static int probe_child(jg_netns_mode_t mode, char *errbuf, size_t len)
{
    if (jg_netns_hub_setup(mode, NULL, errbuf, len) < 0)
        return -1;
    int fd = jg_nl_open(), nsfd = -1, rc = -1, e;
    if (fd < 0)
        return jg_netns_fail(errbuf, len, "cannot open a netlink socket: %s", strerror(errno));
    if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWNS) < 0) {
        jg_netns_fail(errbuf, len, "cannot create node namespaces: %s", strerror(errno));
        goto done;
    }
    if ((nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0 ||
        (e = jg_nl_veth_add(fd, "n0", (int)if_nametoindex(BRIDGE), NODE_IF, nsfd)) < 0) {
        jg_netns_fail(errbuf, len, "cannot create a veth pair: %s", nsfd < 0 ? strerror(errno) : strerror(-e));
        goto done;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
        jg_netns_fail(errbuf, len, "cannot set mount propagation: %s", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (nsfd >= 0)
        close(nsfd);
    close(fd);
    return rc;
}

/* Runs the probe (or, mounts_only, just the mount + UTS part) in a child;
 * 0 if it succeeded, else -1 with its message in why. */
static int in_child(jg_netns_mode_t mode, bool mounts_only, char *why, size_t len)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return jg_netns_fail(why, len, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return jg_netns_fail(why, len, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        char msg[256] = "";
        close(pipefd[0]);
        int r;
        if (!mounts_only)
            r = probe_child(mode, msg, sizeof msg);
        else if (unshare(CLONE_NEWUTS | CLONE_NEWNS) < 0 ||
                 mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
            r = jg_netns_fail(msg, sizeof msg, "%s", strerror(errno));
        else
            r = 0;
        if (r < 0)
            (void)!write(pipefd[1], msg, strlen(msg));
        _exit(r < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    char msg[256];
    ssize_t n;
    while ((n = read(pipefd[0], msg, sizeof msg - 1)) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    msg[n > 0 ? n : 0] = '\0';
    return jg_netns_fail(why, len, "%s", n > 0 ? msg : "the probe died");
}

void jg_netns_probe(jg_netns_caps_t *caps)
{
    memset(caps, 0, sizeof *caps);
    char why[200];
    jg_netns_mode_t mode = geteuid() == 0 ? JG_NETNS_ROOT : JG_NETNS_USERNS;
    if (in_child(mode, false, why, sizeof why) == 0) {
        caps->mode = mode;
        caps->own_mounts = true;
        return;
    }
    caps->mode = JG_NETNS_HOST;
    caps->own_mounts = geteuid() == 0 && in_child(mode, true, NULL, 0) == 0;
    snprintf(caps->why, sizeof caps->why, "%s", why);
}
