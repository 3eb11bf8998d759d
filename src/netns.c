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
#include "jgsched/fsutil.h"
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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BRIDGE "br0"
#define NODE_IF "eth0"
#define HUB_BASE 0x0ac80000u        /* 10.200.0.0 */
#define UPLINK_IF "up0"             /* the hub's end of its uplink */
#define LINK_READY_MS 10000         /* how long a node waits for its link to carry packets */
#define KEEPER_MSG 256              /* the longest reason a keeper gives for a failed set-up */

/* ---- small helpers (no heap: the node child uses them) ------------------ */

static int sys_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0u);
}

/* Formats into buf (never overflows) and returns -1: the child's error idiom. */
static int fail(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *buf, size_t len, const char *fmt, ...)
{
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int jg_netns_write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t n = write(fd, text, len);
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)len ? 0 : -1;
}


/* ---- rtnetlink ---------------------------------------------------------- */

/* One request, built in place: a header, a fixed body, then attributes. */
typedef struct {
    char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
} nlreq_t;

static struct nlmsghdr *nl_hdr(nlreq_t *r)
{
    return (struct nlmsghdr *)(void *)r->buf;
}

static int nl_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -1;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void nl_init(nlreq_t *r, int type, int flags, const void *body, size_t len)
{
    memset(r, 0, sizeof *r);
    struct nlmsghdr *h = nl_hdr(r);
    h->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
    h->nlmsg_type = (uint16_t)type;
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    memcpy(r->buf + NLMSG_HDRLEN, body, len);
}

static struct rtattr *nl_attr(nlreq_t *r, int type, const void *data, size_t len)
{
    struct nlmsghdr *h = nl_hdr(r);
    size_t off = NLMSG_ALIGN(h->nlmsg_len);
    if (off + RTA_SPACE(len) > sizeof r->buf)
        abort();        /* our messages are fixed and small: a bug, not an input */
    struct rtattr *a = (struct rtattr *)(void *)(r->buf + off);
    a->rta_type = (uint16_t)type;
    a->rta_len = (uint16_t)RTA_LENGTH(len);
    if (len)
        memcpy(r->buf + off + RTA_LENGTH(0), data, len);
    h->nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
    return a;
}

static void nl_attr_str(nlreq_t *r, int type, const char *s)
{
    nl_attr(r, type, s, strlen(s) + 1);
}

static void nl_nest_end(nlreq_t *r, struct rtattr *nest)
{
    nest->rta_len = (uint16_t)(r->buf + NLMSG_ALIGN(nl_hdr(r)->nlmsg_len) - (char *)nest);
}

/* Sends one request and waits for its acknowledgement; 0 or -errno.  When
 * ifindex is not NULL, the index of a link the kernel answers with is stored
 * there (RTM_GETLINK). */
static int nl_talk(int fd, nlreq_t *r, int *ifindex)
{
    static uint32_t seq;
    struct nlmsghdr *req = nl_hdr(r);
    req->nlmsg_seq = ++seq;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    ssize_t n;
    do
        n = sendto(fd, req, req->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        int left = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != req->nlmsg_seq)
                continue;
            if (h->nlmsg_type == RTM_NEWLINK && ifindex &&
                h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct ifinfomsg)))
                *ifindex = ((const struct ifinfomsg *)NLMSG_DATA(h))->ifi_index;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                return e->error;
            }
        }
    }
}

static int link_up(int fd, int ifindex)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex,
                            .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    nl_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    return nl_talk(fd, &r, NULL);
}

static int link_del(int fd, const char *name)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    nl_init(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
    nl_attr_str(&r, IFLA_IFNAME, name);
    return nl_talk(fd, &r, NULL);
}

static int bridge_add(int fd, const char *name)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    nl_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    nl_attr_str(&r, IFLA_IFNAME, name);
    struct rtattr *info = nl_attr(&r, IFLA_LINKINFO, NULL, 0);
    nl_attr_str(&r, IFLA_INFO_KIND, "bridge");
    nl_nest_end(&r, info);
    return nl_talk(fd, &r, NULL);
}

/* A veth pair: `name` here, up, a port of `master`; `peer` in the namespace
 * of peer_nsfd (down: the inside brings it up). */
static int veth_add(int fd, const char *name, int master, const char *peer, int peer_nsfd)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    nl_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    nl_attr_str(&r, IFLA_IFNAME, name);
    if (master > 0) {
        uint32_t m = (uint32_t)master;
        nl_attr(&r, IFLA_MASTER, &m, sizeof m);
    }
    struct rtattr *info = nl_attr(&r, IFLA_LINKINFO, NULL, 0);
    nl_attr_str(&r, IFLA_INFO_KIND, "veth");
    struct rtattr *data = nl_attr(&r, IFLA_INFO_DATA, NULL, 0);
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    struct rtattr *p = nl_attr(&r, VETH_INFO_PEER, &pifi, sizeof pifi);
    nl_attr_str(&r, IFLA_IFNAME, peer);
    uint32_t nsfd = (uint32_t)peer_nsfd;
    nl_attr(&r, IFLA_NET_NS_FD, &nsfd, sizeof nsfd);
    nl_nest_end(&r, p);
    nl_nest_end(&r, data);
    nl_nest_end(&r, info);
    return nl_talk(fd, &r, NULL);
}

/* An address on ifindex: `local`/prefix, or with peer != local a
 * point-to-point one (local/32 with a route to peer through the link). */
static int addr_add(int fd, int ifindex, uint32_t local, uint32_t peer, int prefix)
{
    nlreq_t r;
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix,
                            .ifa_index = (unsigned)ifindex};
    nl_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    uint32_t a = htonl(local), p = htonl(peer);
    nl_attr(&r, IFA_LOCAL, &a, sizeof a);
    nl_attr(&r, IFA_ADDRESS, &p, sizeof p);
    return nl_talk(fd, &r, NULL);
}

/* The default route: through gateway on link oif. */
static int route_default(int fd, int oif, uint32_t gateway)
{
    nlreq_t r;
    struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
                       .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
                       .rtm_type = RTN_UNICAST};
    nl_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
    uint32_t gw = htonl(gateway), o = (uint32_t)oif;
    nl_attr(&r, RTA_GATEWAY, &gw, sizeof gw);
    nl_attr(&r, RTA_OIF, &o, sizeof o);
    return nl_talk(fd, &r, NULL);
}

/* The index of link `name` in the namespace of socket fd (if_nametoindex
 * only sees the caller's): > 0, or -errno. */
static int link_index(int fd, const char *name)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    nl_init(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
    nl_attr_str(&r, IFLA_IFNAME, name);
    int index = 0;
    int e = nl_talk(fd, &r, &index);
    return e < 0 ? e : index > 0 ? index : -ENODEV;
}

/* Whether link `name` (in the namespace of socket fd) carries packets yet:
 * 1 yes, 0 not yet, -errno.  Bringing a veth up only sets its carrier; the
 * kernel's link watcher then, asynchronously, marks it running (operstate
 * up), swaps its "noop" qdisc, which drops everything, for a real one, and
 * tells a bridge it is a port of to let it forward.  port: also wait for
 * that (IFLA_BRPORT_STATE forwarding). */
static int link_ready(int fd, const char *name, bool port)
{
    static uint32_t seq = 1u << 30;
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    nl_init(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
    nl_hdr(&r)->nlmsg_flags = NLM_F_REQUEST;
    nl_hdr(&r)->nlmsg_seq = ++seq;
    nl_attr_str(&r, IFLA_IFNAME, name);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, r.buf, nl_hdr(&r)->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
        return -errno;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        int left = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq != seq)
                continue;
            if (h->nlmsg_type == NLMSG_ERROR)
            {
                int e = ((const struct nlmsgerr *)NLMSG_DATA(h))->error;
                return e < 0 ? e : -EPROTO;
            }
            if (h->nlmsg_type != RTM_NEWLINK)
                continue;
            const struct ifinfomsg *info = NLMSG_DATA(h);
            bool running = info->ifi_flags & IFF_RUNNING, noop = true, forwarding = !port;
            int alen = (int)IFLA_PAYLOAD(h);
            for (const struct rtattr *a = IFLA_RTA(info); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (a->rta_type == IFLA_QDISC)
                    noop = strncmp(RTA_DATA(a), "noop", RTA_PAYLOAD(a)) == 0;
                if (a->rta_type != IFLA_LINKINFO)
                    continue;
                int ilen = (int)RTA_PAYLOAD(a);
                for (const struct rtattr *i = RTA_DATA(a); RTA_OK(i, ilen); i = RTA_NEXT(i, ilen)) {
                    if (i->rta_type != IFLA_INFO_SLAVE_DATA)
                        continue;
                    int slen = (int)RTA_PAYLOAD(i);
                    for (const struct rtattr *sl = RTA_DATA(i); RTA_OK(sl, slen);
                         sl = RTA_NEXT(sl, slen))
                        if (sl->rta_type == IFLA_BRPORT_STATE)
                            forwarding = *(const uint8_t *)RTA_DATA(sl) == BR_STATE_FORWARDING;
                }
            }
            return running && !noop && forwarding;
        }
    }
}

/* Waits (up to timeout_ms, polling from 1 ms up to every 20 ms) until the
 * node's eth0 and its hub end both carry packets, so a node reported set up
 * can reach every peer set up before it.  0, or -1 with a message. */
static int wait_links_ready(int node_nl, int hub_nl, const char *hub_if, int timeout_ms,
                            char *errbuf, size_t len)
{
    long waited_us = 0, step_us = 1000;
    for (;;) {
        int a = link_ready(node_nl, NODE_IF, false);
        int b = a == 1 ? link_ready(hub_nl, hub_if, true) : 0;
        if (a < 0 || b < 0)
            return fail(errbuf, len, "cannot read the state of the node's link: %s",
                        strerror(-(a < 0 ? a : b)));
        if (a == 1 && b == 1)
            return 0;
        if (waited_us >= (long)timeout_ms * 1000)
            return fail(errbuf, len, "the node's link (%s, %s in the group's network) did not "
                        "come up within %d ms (%s); the host may be overloaded",
                        NODE_IF, hub_if, timeout_ms, a != 1 ? "eth0 not running" :
                        "its bridge port not forwarding");
        struct timespec ts = {0, step_us * 1000};
        nanosleep(&ts, NULL);
        waited_us += step_us;
        if (step_us < 20000)
            step_us *= 2;
    }
}

/* ---- addresses and the hosts file ---------------------------------------- */

int jg_netns_node_address(int index, char *buf, size_t len)
{
    if (index < 0 || index >= JG_NETNS_MAX_NODES)
        return -1;
    uint32_t a = HUB_BASE + 2u + (uint32_t)index;
    int n = snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u,
                     a & 255u);
    return n > 0 && (size_t)n < len ? 0 : -1;
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

int jg_netns_uplink_parse(const char *text, jg_netns_uplink_t *out, char *why, size_t len)
{
    char addr[INET_ADDRSTRLEN];
    const char *slash = text ? strchr(text, '/') : NULL;
    struct in_addr a;
    char *end;
    if (!slash || (size_t)(slash - text) >= sizeof addr)
        return fail(why, len, "'%s' is not an IPv4 network: write it as address/prefix, "
                    "e.g. %s", text ? text : "", JG_NETNS_UPLINK_DEFAULT);
    memcpy(addr, text, (size_t)(slash - text));
    addr[slash - text] = '\0';
    errno = 0;
    long prefix = strtol(slash + 1, &end, 10);
    if (inet_pton(AF_INET, addr, &a) != 1 || end == slash + 1 || *end || errno)
        return fail(why, len, "'%s' is not an IPv4 network: write it as address/prefix, "
                    "e.g. %s", text, JG_NETNS_UPLINK_DEFAULT);
    if (prefix < JG_NETNS_UPLINK_MIN_PREFIX || prefix > JG_NETNS_UPLINK_MAX_PREFIX)
        return fail(why, len, "prefix /%ld of '%s' is out of range: it must be between /%d "
                    "and /%d", prefix, text, JG_NETNS_UPLINK_MIN_PREFIX,
                    JG_NETNS_UPLINK_MAX_PREFIX);
    uint32_t net = ntohl(a.s_addr), mask = ~0u << (32 - prefix);
    if (net & ~mask)
        return fail(why, len, "'%s' has host bits set: the network is %u.%u.%u.%u/%ld", text,
                    (net & mask) >> 24, ((net & mask) >> 16) & 255u, ((net & mask) >> 8) & 255u,
                    net & mask & 255u, prefix);
    uint32_t hub_mask = ~0u << (32 - JG_NETNS_PREFIX);
    uint32_t common = prefix < JG_NETNS_PREFIX ? mask : hub_mask;
    if ((net & common) == (HUB_BASE & common))
        return fail(why, len, "'%s' overlaps 10.200.0.0/16, the network of every group's "
                    "nodes", text);
    out->network = net;
    out->prefix = (int)prefix;
    return 0;
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

/* mode USERNS: the calling process's new user namespace maps its own uid and
 * gid to themselves (all an unprivileged process may map). */
static int enter_own_userns(char *errbuf, size_t len)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    /* /proc/self/uid_map is ours to write only while we are dumpable (a
     * process that changed its uids is not, until told). */
    prctl(PR_SET_DUMPABLE, 1);
    if (unshare(CLONE_NEWUSER) < 0)
        return fail(errbuf, len, "cannot create a user namespace: %s", strerror(errno));
    char map[64];
    if (jg_netns_write_text("/proc/self/setgroups", "deny") < 0)
        return fail(errbuf, len, "cannot write /proc/self/setgroups: %s", strerror(errno));
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if (jg_netns_write_text("/proc/self/uid_map", map) < 0)
        return fail(errbuf, len, "cannot write /proc/self/uid_map: %s", strerror(errno));
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if (jg_netns_write_text("/proc/self/gid_map", map) < 0)
        return fail(errbuf, len, "cannot write /proc/self/gid_map: %s", strerror(errno));
    return 0;
}

/* In the keeper, in the hub's new namespace: claims an address of the uplink
 * network by creating the pair whose host end is named after it (EEXIST:
 * another hub holds it, try the next), addresses both ends point to point,
 * routes the hub out through it and masquerades there.  host_nl and host_ns
 * were opened in the host's namespace, before the keeper left it. */
static int uplink_setup(int hub_nl, int host_nl, int host_ns, const jg_netns_uplink_t *up,
                        char *errbuf, size_t len)
{
    uint32_t size = 1u << (32 - up->prefix);
    uint32_t usable = size - 3u;    /* less the network, the host's end and broadcast */
    uint32_t gateway = up->network + 1u;
    uint32_t first = ((uint32_t)getpid() * 2654435761u) % usable;  /* spread the claims */
    char host_if[IFNAMSIZ];
    uint32_t addr = 0;
    int e = -EEXIST;
    for (uint32_t i = 0; i < usable && e == -EEXIST; i++) {
        addr = up->network + 2u + (first + i) % usable;
        snprintf(host_if, sizeof host_if, JG_NETNS_UPLINK_HOST_PREFIX "%08" PRIx32, addr);
        e = veth_add(hub_nl, UPLINK_IF, 0, host_if, host_ns);
    }
    if (e == -EEXIST)
        return fail(errbuf, len, "no free address for the group's uplink: all %" PRIu32
                    " of the uplink network are held by running groups (widen "
                    "backends.local.nat_network)", usable);
    if (e < 0)
        return fail(errbuf, len, "cannot create the group's uplink: %s", strerror(-e));
    int host_idx = link_index(host_nl, host_if);
    int hub_idx = (int)if_nametoindex(UPLINK_IF);
    if (host_idx < 0 || hub_idx <= 0)
        return fail(errbuf, len, "cannot find the group's uplink %s: %s", host_if,
                    strerror(host_idx < 0 ? -host_idx : errno));
    if ((e = addr_add(host_nl, host_idx, gateway, addr, 32)) < 0 ||
        (e = link_up(host_nl, host_idx)) < 0 ||
        (e = addr_add(hub_nl, hub_idx, addr, gateway, 32)) < 0 ||
        (e = route_default(hub_nl, hub_idx, gateway)) < 0)
        return fail(errbuf, len, "cannot configure the group's uplink %s: %s", host_if,
                    strerror(-e));
    if (jg_netns_write_text("/proc/sys/net/ipv4/ip_forward", "1") < 0)
        return fail(errbuf, len, "cannot turn on forwarding in the group's network: %s",
                    strerror(errno));
    return jg_netns_nat_hub(UPLINK_IF, errbuf, len);
}

/* In the keeper, before it execs: the hub's namespace, bridge and uplink. */
static int hub_setup(jg_netns_mode_t mode, const jg_netns_uplink_t *uplink, char *errbuf,
                     size_t len)
{
    if (uplink && mode != JG_NETNS_ROOT)
        return fail(errbuf, len, "an uplink (NAT) needs a daemon running as root");
    if (mode == JG_NETNS_USERNS && enter_own_userns(errbuf, len) < 0)
        return -1;
    int host_ns = -1, host_nl = -1, fd = -1, rc = -1, e;
    if (uplink && ((host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0 ||
                   (host_nl = nl_open()) < 0)) {
        fail(errbuf, len, "cannot open the host's network namespace: %s", strerror(errno));
        goto done;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        fail(errbuf, len, "cannot create the group's network namespace: %s", strerror(errno));
        goto done;
    }
    if ((fd = nl_open()) < 0) {
        fail(errbuf, len, "cannot open a netlink socket: %s", strerror(errno));
        goto done;
    }
    if ((e = bridge_add(fd, BRIDGE)) < 0) {
        fail(errbuf, len, "cannot create the group's bridge: %s", strerror(-e));
        goto done;
    }
    int br = (int)if_nametoindex(BRIDGE);
    if (br <= 0 || (e = addr_add(fd, br, HUB_BASE + 1u, HUB_BASE + 1u, JG_NETNS_PREFIX)) < 0) {
        fail(errbuf, len, "cannot address the group's bridge: %s", strerror(br <= 0 ? errno : -e));
        goto done;
    }
    if (uplink && uplink_setup(fd, host_nl, host_ns, uplink, errbuf, len) < 0)
        goto done;
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    if (host_nl >= 0)
        close(host_nl);
    if (host_ns >= 0)
        close(host_ns);
    return rc;
}

int jg_netns_hub_start(jg_netns_mode_t mode, const jg_netns_uplink_t *uplink,
                       char *const hold_argv[], jg_netns_hub_t *hub, jg_error_t *err)
{
    hub->pid = -1;
    hub->pidfd = -1;
    hub->ready_fd = -1;
    hub->start = 0;
    if (mode == JG_NETNS_HOST)
        return jg_errprintf(err, "group network: no namespaces in mode HOST");
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
        return jg_errprintf(err, "group network: pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return jg_errprintf(err, "group network: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        /* The reason of a failure goes in one write of at most KEEPER_MSG
         * bytes (atomic on a pipe), before _exit: jg_netns_hub_ready reads
         * it whole or sees the end of the pipe (exec closed it: success). */
        char msg[KEEPER_MSG] = "";
        close(pipefd[0]);
        (void)fcntl(pipefd[1], F_SETFL, 0);
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                signal(sig, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (setsid() < 0 || hub_setup(mode, uplink, msg, sizeof msg) < 0) {
            if (msg[0] == '\0')
                snprintf(msg, sizeof msg, "setsid: %s", strerror(errno));
            (void)!write(pipefd[1], msg, strlen(msg));
            _exit(1);
        }
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        if (hold_argv) {
            /* Keep only stdio and the pipe: exec closes the pipe (success). */
            unsigned keep = (unsigned)pipefd[1];
            if (keep > 3)
                syscall(SYS_close_range, 3u, keep - 1, 0u);
            syscall(SYS_close_range, keep + 1, ~0u, 0u);
            char *envp[] = {NULL};
            execve(hold_argv[0], hold_argv, envp);
            snprintf(msg, sizeof msg, "cannot execute %s: %s", hold_argv[0], strerror(errno));
            (void)!write(pipefd[1], msg, strlen(msg));
            _exit(1);
        }
        syscall(SYS_close_range, 3u, ~0u, 0u);     /* the pipe too: success */
        for (;;)
            pause();
    }
    close(pipefd[1]);
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
    char msg[KEEPER_MSG + 1];
    ssize_t n;
    while ((n = read(hub->ready_fd, msg, KEEPER_MSG)) < 0 && errno == EINTR)
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

int jg_netns_hub_create(jg_netns_mode_t mode, const jg_netns_uplink_t *uplink,
                        char *const hold_argv[], jg_netns_hub_t *hub, jg_error_t *err)
{
    if (jg_netns_hub_start(mode, uplink, hold_argv, hub, err) < 0)
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
        return fail(errbuf, len, "cannot %s the mount point %s: %s (for %s)",
                    in_tmp ? "make" : "reach", target,
                    errno == ELOOP ? "a component is a symbolic link" : strerror(errno), what);
    char from[32], to[32];
    snprintf(from, sizeof from, "/proc/self/fd/%d", src);
    snprintf(to, sizeof to, "/proc/self/fd/%d", dst);
    int r = mount(from, to, NULL, MS_BIND | MS_REC, NULL);
    int e = errno;
    close(dst);
    if (r < 0)
        return fail(errbuf, len, "cannot mount %s on %s: %s", what, target, strerror(e));
    return 0;
}

/* The node's files: /etc/hosts, /etc/resolv.conf, its own /tmp (hiding the
 * host's), the one host directory it must keep seeing, and its volumes.
 * Every host directory is opened before /tmp is covered, since a volume's
 * source or the kept directory may lie in the host's /tmp. */
static int node_mounts(const jg_netns_node_t *node, char *errbuf, size_t len)
{
    if (node->hostname && sethostname(node->hostname, strlen(node->hostname)) < 0)
        return fail(errbuf, len, "cannot set the hostname %s: %s", node->hostname,
                    strerror(errno));
    /* Our mounts stay ours; the host's later ones still reach us. */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return fail(errbuf, len, "cannot make / a slave mount: %s", strerror(errno));
    if (node->hosts_path) {
        if (mount(node->hosts_path, "/etc/hosts", NULL, MS_BIND, NULL) < 0)
            return fail(errbuf, len, "cannot bind %s on /etc/hosts: %s", node->hosts_path,
                        strerror(errno));
        (void)remount_ro("/etc/hosts");     /* best effort: it is root's file anyway */
    }
    /* A host without /etc/resolv.conf resolves nothing by DNS; neither does the node. */
    struct stat st;
    if (node->resolv_path && stat("/etc/resolv.conf", &st) == 0) {
        if (mount(node->resolv_path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
            return fail(errbuf, len, "cannot bind %s on /etc/resolv.conf: %s",
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
            fail(errbuf, len, "volume directory %s: %s", node->binds[opened].source,
                 strerror(errno));
            goto done;
        }
    }
    bool keep = node->tmp_path && node->keep_path && strncmp(node->keep_path, "/tmp/", 5) == 0;
    if (keep) {
        if ((src[n] = open(node->keep_path, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
            fail(errbuf, len, "cannot open %s: %s", node->keep_path, strerror(errno));
            goto done;
        }
        opened++;
    }
    if (node->tmp_path && mount(node->tmp_path, "/tmp", NULL, MS_BIND, NULL) < 0) {
        fail(errbuf, len, "cannot bind %s on /tmp: %s", node->tmp_path, strerror(errno));
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
            return fail(errbuf, len, "cannot create the node's mount and UTS namespaces: %s",
                        strerror(errno));
        return node->own_mounts ? node_mounts(node, errbuf, len) : 0;
    }
    char ip[32], hub_if[IFNAMSIZ];
    if (jg_netns_node_address(node->index, ip, sizeof ip) < 0)
        return fail(errbuf, len, "node index %d has no address (at most %d nodes per group)",
                    node->index, JG_NETNS_MAX_NODES);
    snprintf(hub_if, sizeof hub_if, "n%d", node->index);

    int hub_nl = -1, node_nl = -1, nsfd = -1, rc = -1, e;
    int flags = CLONE_NEWNET | (node->mode == JG_NETNS_USERNS ? CLONE_NEWUSER : 0);
    if (setns(node->hub_pidfd, flags) < 0) {
        fail(errbuf, len, "cannot enter the group's network (keeper gone?): %s", strerror(errno));
        goto done;
    }
    if ((hub_nl = nl_open()) < 0) {
        fail(errbuf, len, "cannot open a netlink socket: %s", strerror(errno));
        goto done;
    }
    int br = (int)if_nametoindex(BRIDGE);
    if (br <= 0) {
        fail(errbuf, len, "the group's network has no bridge: %s", strerror(errno));
        goto done;
    }
    /* A previous attempt's pair may linger while its namespace is freed. */
    if ((e = link_del(hub_nl, hub_if)) < 0 && e != -ENODEV) {
        fail(errbuf, len, "cannot remove the stale link %s: %s", hub_if, strerror(-e));
        goto done;
    }
    if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWNS) < 0) {
        fail(errbuf, len, "cannot create the node's namespaces: %s", strerror(errno));
        goto done;
    }
    if ((nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
        fail(errbuf, len, "cannot open /proc/self/ns/net: %s", strerror(errno));
        goto done;
    }
    if ((e = veth_add(hub_nl, hub_if, br, NODE_IF, nsfd)) < 0) {
        fail(errbuf, len, "cannot create the node's link %s: %s", hub_if, strerror(-e));
        goto done;
    }
    if ((node_nl = nl_open()) < 0) {
        fail(errbuf, len, "cannot open a netlink socket in the node: %s", strerror(errno));
        goto done;
    }
    int lo = (int)if_nametoindex("lo"), eth = (int)if_nametoindex(NODE_IF);
    struct in_addr a;
    inet_pton(AF_INET, ip, &a);
    if (lo <= 0 || eth <= 0 || (e = link_up(node_nl, lo)) < 0 ||
        (e = addr_add(node_nl, eth, ntohl(a.s_addr), ntohl(a.s_addr), JG_NETNS_PREFIX)) < 0 ||
        (e = link_up(node_nl, eth)) < 0 ||
        (node->default_route && (e = route_default(node_nl, eth, HUB_BASE + 1u)) < 0)) {
        fail(errbuf, len, "cannot configure the node's network (%s on %s): %s", ip, NODE_IF,
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
        fail(errbuf, len, "cannot allow ping in the node: %s", strerror(errno));
        goto done;
    }
    if (node_mounts(node, errbuf, len) < 0)
        goto done;
    /* Last, when the kernel has had the most time: the group's barrier opens
     * once every node is set up, so every peer must answer from then on. */
    if (wait_links_ready(node_nl, hub_nl, hub_if, LINK_READY_MS, errbuf, len) < 0)
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
    if (hub_setup(mode, NULL, errbuf, len) < 0)
        return -1;
    int fd = nl_open(), nsfd = -1, rc = -1, e;
    if (fd < 0)
        return fail(errbuf, len, "cannot open a netlink socket: %s", strerror(errno));
    if (unshare(CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWNS) < 0) {
        fail(errbuf, len, "cannot create node namespaces: %s", strerror(errno));
        goto done;
    }
    if ((nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0 ||
        (e = veth_add(fd, "n0", (int)if_nametoindex(BRIDGE), NODE_IF, nsfd)) < 0) {
        fail(errbuf, len, "cannot create a veth pair: %s", nsfd < 0 ? strerror(errno) : strerror(-e));
        goto done;
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
        fail(errbuf, len, "cannot set mount propagation: %s", strerror(errno));
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
        return fail(why, len, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return fail(why, len, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        char msg[256] = "";
        close(pipefd[0]);
        int r;
        if (!mounts_only)
            r = probe_child(mode, msg, sizeof msg);
        else if (unshare(CLONE_NEWUTS | CLONE_NEWNS) < 0 ||
                 mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
            r = fail(msg, sizeof msg, "%s", strerror(errno));
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
    return fail(why, len, "%s", n > 0 ? msg : "the probe died");
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
