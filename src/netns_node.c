/* netns_node.c - a node's namespaces: joining its group's hub, its own
 * network, UTS and mount namespaces, its link, hostname, hosts file, /tmp and
 * volumes (jg_netns_node_enter; netns.c's top says why this shape).  Linked
 * into jgsched-shim, whose --node mode does this as the node's first process,
 * so it needs nothing beyond libc. */
#include "jgsched/fsutil.h"
#include "jgsched/netns.h"
#include "netns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* ---- a node ------------------------------------------------------------- */

/* Remounts a bind mount read-only, keeping the flags it must keep (a mount
 * copied from a more privileged namespace has locked ones). */
static int remount_ro(const char *path)
{
    struct statvfs sv;
    if (statvfs(path, &sv) < 0)
        return -1;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
    if (sv.f_flag & ST_NOSUID)
        flags |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        flags |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        flags |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        flags |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        flags |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        flags |= MS_RELATIME;
    return mount(NULL, path, NULL, flags, NULL);
}

/* Binds directory descriptor src on path target, reached without following
 * links.  A missing mount point is made only in the node's own /tmp (owned by
 * the node's user, as everything there is): one outside /tmp was made on the
 * host, as the user, before this child ran (backends/local/volumes.c), and root makes
 * nothing in directories of the host.  Both ends go through /proc/self/fd, so
 * no path is looked up twice. */
static int bind_dir_at(const jg_netns_node_t *node, int src, const char *target, const char *what,
                       char *errbuf, size_t len)
{
    bool in_tmp = node->tmp_path && strncmp(target, "/tmp/", 5) == 0;
    int dst = jg_fs_open_dir(target, in_tmp, node->uid, node->gid);
    if (dst < 0)
        return jg_netns_fail(errbuf, len, "cannot %s the mount point %s: %s (for %s)",
                    in_tmp ? "make" : "reach", target,
                    errno == ELOOP ? "a component is a symbolic link" : strerror(errno), what);
    char from[32], to[32];
    snprintf(from, sizeof from, "/proc/self/fd/%d", src);
    snprintf(to, sizeof to, "/proc/self/fd/%d", dst);
    int r = mount(from, to, NULL, MS_BIND | MS_REC, NULL);
    int e = errno;
    close(dst);
    if (r < 0)
        return jg_netns_fail(errbuf, len, "cannot mount %s on %s: %s", what, target, strerror(e));
    return 0;
}

/* The node's files: /etc/hosts, /etc/resolv.conf, its own /tmp (hiding the
 * host's), the one host directory it must keep seeing, and its volumes.
 * Every host directory is opened before /tmp is covered, since a volume's
 * source or the kept directory may lie in the host's /tmp. */
static int node_mounts(const jg_netns_node_t *node, char *errbuf, size_t len)
{
    if (node->hostname && sethostname(node->hostname, strlen(node->hostname)) < 0)
        return jg_netns_fail(errbuf, len, "cannot set the hostname %s: %s", node->hostname,
                    strerror(errno));
    /* Our mounts stay ours; the host's later ones still reach us. */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return jg_netns_fail(errbuf, len, "cannot make / a slave mount: %s", strerror(errno));
    if (node->hosts_path) {
        if (mount(node->hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) < 0)
            return jg_netns_fail(errbuf, len, "cannot bind %s on /etc/hosts: %s", node->hosts_path,
                        strerror(errno));
        (void)remount_ro("/etc/hosts");     /* best effort: it is root's file anyway */
    }
    /* A host without /etc/resolv.conf resolves nothing by DNS; neither does the node. */
    struct stat st;
    if (node->resolv_path && stat("/etc/resolv.conf", &st) == 0) {
        if (mount(node->resolv_path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
            return jg_netns_fail(errbuf, len, "cannot bind %s on /etc/resolv.conf: %s",
                        node->resolv_path, strerror(errno));
        (void)remount_ro("/etc/resolv.conf");
    }

    size_t n = node->n_binds;
    int src[n + 1];                 /* the volumes', then the kept directory's */
    size_t opened = 0;
    int rc = -1;
    for (; opened < n; opened++) {
        src[opened] = open(node->binds[opened].source, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (src[opened] < 0) {
            jg_netns_fail(errbuf, len, "volume directory %s: %s", node->binds[opened].source,
                 strerror(errno));
            goto done;
        }
    }
    bool keep = node->tmp_path && node->keep_path && strncmp(node->keep_path, "/tmp/", 5) == 0;
    if (keep) {
        if ((src[n] = open(node->keep_path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
            jg_netns_fail(errbuf, len, "cannot open %s: %s", node->keep_path, strerror(errno));
            goto done;
        }
        opened++;
    }
    if (node->tmp_path && mount(node->tmp_path, "/tmp", NULL, MS_BIND, NULL) < 0) {
        jg_netns_fail(errbuf, len, "cannot bind %s on /tmp: %s", node->tmp_path, strerror(errno));
        goto done;
    }
    if (keep && bind_dir_at(node, src[n], node->keep_path, node->keep_path, errbuf, len) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        char what[300];
        snprintf(what, sizeof what, "volume %s", node->binds[i].source);
        if (bind_dir_at(node, src[i], node->binds[i].target, what, errbuf, len) < 0)
            goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < opened; i++)
        close(src[i]);
    return rc;
}

int jg_netns_node_enter(const jg_netns_node_t *node, char *errbuf, size_t len)
{
    if (node->mode == JG_NETNS_HOST) {
        if (node->own_mounts && unshare(CLONE_NEWUTS | CLONE_NEWNS) < 0)
            return jg_netns_fail(errbuf, len, "cannot create the node's mount and UTS namespaces: %s",
                        strerror(errno));
        return node->own_mounts ? node_mounts(node, errbuf, len) : 0;
    }
    char ip[32], hub_if[IFNAMSIZ];
    if (jg_netns_node_address(node->index, ip, sizeof ip) < 0)
        return jg_netns_fail(errbuf, len, "node index %d has no address (at most %d nodes per group)",
                    node->index, JG_NETNS_MAX_NODES);
    snprintf(hub_if, sizeof hub_if, "n%d", node->index);

    int hub_nl = -1, node_nl = -1, nsfd = -1, rc = -1, e;
    int flags = CLONE_NEWNET | (node->mode == JG_NETNS_USERNS ? CLONE_NEWUSER : 0);
    if (setns(node->hub_pidfd, flags) < 0) {
        jg_netns_fail(errbuf, len, "cannot enter the group's network (keeper gone?): %s", strerror(errno));
        goto done;
    }
    if ((hub_nl = jg_nl_open()) < 0) {
        jg_netns_fail(errbuf, len, "cannot open a netlink socket: %s", strerror(errno));
        goto done;
    }
    int br = (int)if_nametoindex(BRIDGE);
    if (br <= 0) {
        jg_netns_fail(errbuf, len, "the group's network has no bridge: %s", strerror(errno));
        goto done;
    }
    /* A previous attempt's pair may linger while its namespace is freed. */
    if ((e = jg_nl_link_del(hub_nl, hub_if)) < 0 && e != -ENODEV) {
        jg_netns_fail(errbuf, len, "cannot remove the stale link %s: %s", hub_if, strerror(-e));
        goto done;
    }
    if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWNS) < 0) {
        jg_netns_fail(errbuf, len, "cannot create the node's namespaces: %s", strerror(errno));
        goto done;
    }
    if ((nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
        jg_netns_fail(errbuf, len, "cannot open /proc/self/ns/net: %s", strerror(errno));
        goto done;
    }
    if ((e = jg_nl_veth_add(hub_nl, hub_if, br, NODE_IF, nsfd)) < 0) {
        jg_netns_fail(errbuf, len, "cannot create the node's link %s: %s", hub_if, strerror(-e));
        goto done;
    }
    if ((node_nl = jg_nl_open()) < 0) {
        jg_netns_fail(errbuf, len, "cannot open a netlink socket in the node: %s", strerror(errno));
        goto done;
    }
    int lo = (int)if_nametoindex("lo"), eth = (int)if_nametoindex(NODE_IF);
    struct in_addr a;
    inet_pton(AF_INET, ip, &a);
    if (lo <= 0 || eth <= 0 || (e = jg_nl_link_up(node_nl, lo)) < 0 ||
        (e = jg_nl_addr_add(node_nl, eth, ntohl(a.s_addr), ntohl(a.s_addr), JG_NETNS_PREFIX)) < 0 ||
        (e = jg_nl_link_up(node_nl, eth)) < 0 ||
        (node->default_route && (e = jg_nl_route_default(node_nl, eth, HUB_BASE + 1u)) < 0)) {
        jg_netns_fail(errbuf, len, "cannot configure the node's network (%s on %s): %s", ip, NODE_IF,
             strerror(lo <= 0 || eth <= 0 ? errno : -e));
        goto done;
    }
    /* ping without CAP_NET_RAW: ICMP datagram sockets for the node's group. */
    char range[64];
    if (node->mode == JG_NETNS_USERNS)
        snprintf(range, sizeof range, "%u %u", (unsigned)node->gid, (unsigned)node->gid);
    else
        snprintf(range, sizeof range, "0 2147483647");
    if (jg_netns_write_text("/proc/sys/net/ipv4/ping_group_range", range) < 0) {
        jg_netns_fail(errbuf, len, "cannot allow ping in the node: %s", strerror(errno));
        goto done;
    }
    if (node_mounts(node, errbuf, len) < 0)
        goto done;
    /* Last, when the kernel has had the most time: the group's barrier opens
     * once every node is set up, so every peer must answer from then on. */
    if (jg_nl_wait_links_ready(node_nl, hub_nl, hub_if, LINK_READY_MS, errbuf, len) < 0)
        goto done;
    rc = 0;
done:
    if (hub_nl >= 0)
        close(hub_nl);
    if (node_nl >= 0)
        close(node_nl);
    if (nsfd >= 0)
        close(nsfd);
    return rc;
}

