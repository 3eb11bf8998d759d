/* netns_link.c - what the hub (netns.c) and a node (netns_node.c) share:
 * the child's error idiom, /proc/sys writes, the rtnetlink requests that make
 * links and addresses, and a node's address.  No heap anywhere: a node's
 * child and a keeper use these between their start and their exec.
 * (netns_int.h declares them; netns.c's top says why the network has this shape.) */
#include "jgsched/netns.h"
#include "netns_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Formats into buf (never overflows) and returns -1: the child's error idiom. */
int jg_netns_fail(char *buf, size_t len, const char *fmt, ...)
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


struct nlmsghdr *jg_nl_hdr(nlreq_t *r)
{
    return (struct nlmsghdr *)(void *)r->buf;
}

int jg_nl_open(void)
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

void jg_nl_init(nlreq_t *r, int type, int flags, const void *body, size_t len)
{
    memset(r, 0, sizeof *r);
    struct nlmsghdr *h = jg_nl_hdr(r);
    h->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
    h->nlmsg_type = (uint16_t)type;
    h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags);
    memcpy(r->buf + NLMSG_HDRLEN, body, len);
}

struct rtattr *jg_nl_attr(nlreq_t *r, int type, const void *data, size_t len)
{
    struct nlmsghdr *h = jg_nl_hdr(r);
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

void jg_nl_attr_str(nlreq_t *r, int type, const char *s)
{
    jg_nl_attr(r, type, s, strlen(s) + 1);
}

void jg_nl_nest_end(nlreq_t *r, struct rtattr *nest)
{
    nest->rta_len = (uint16_t)(r->buf + NLMSG_ALIGN(jg_nl_hdr(r)->nlmsg_len) - (char *)nest);
}

/* Sends one request and waits for its acknowledgement; 0 or -errno.  When
 * ifindex is not NULL, the index of a link the kernel answers with is stored
 * there (RTM_GETLINK). */
int jg_nl_talk(int fd, nlreq_t *r, int *ifindex)
{
    static uint32_t seq;
    struct nlmsghdr *req = jg_nl_hdr(r);
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

int jg_nl_link_up(int fd, int ifindex)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex,
                            .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    jg_nl_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
    return jg_nl_talk(fd, &r, NULL);
}

int jg_nl_link_del(int fd, const char *name)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    jg_nl_init(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
    jg_nl_attr_str(&r, IFLA_IFNAME, name);
    return jg_nl_talk(fd, &r, NULL);
}

int jg_nl_bridge_add(int fd, const char *name)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    jg_nl_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    jg_nl_attr_str(&r, IFLA_IFNAME, name);
    struct rtattr *info = jg_nl_attr(&r, IFLA_LINKINFO, NULL, 0);
    jg_nl_attr_str(&r, IFLA_INFO_KIND, "bridge");
    jg_nl_nest_end(&r, info);
    return jg_nl_talk(fd, &r, NULL);
}

/* A veth pair: `name` here, up, a port of `master`; `peer` in the namespace
 * of peer_nsfd (down: the inside brings it up). */
int jg_nl_veth_add(int fd, const char *name, int master, const char *peer, int peer_nsfd)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
    jg_nl_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
    jg_nl_attr_str(&r, IFLA_IFNAME, name);
    if (master > 0) {
        uint32_t m = (uint32_t)master;
        jg_nl_attr(&r, IFLA_MASTER, &m, sizeof m);
    }
    struct rtattr *info = jg_nl_attr(&r, IFLA_LINKINFO, NULL, 0);
    jg_nl_attr_str(&r, IFLA_INFO_KIND, "veth");
    struct rtattr *data = jg_nl_attr(&r, IFLA_INFO_DATA, NULL, 0);
    struct ifinfomsg pifi = {.ifi_family = AF_UNSPEC};
    struct rtattr *p = jg_nl_attr(&r, VETH_INFO_PEER, &pifi, sizeof pifi);
    jg_nl_attr_str(&r, IFLA_IFNAME, peer);
    uint32_t nsfd = (uint32_t)peer_nsfd;
    jg_nl_attr(&r, IFLA_NET_NS_FD, &nsfd, sizeof nsfd);
    jg_nl_nest_end(&r, p);
    jg_nl_nest_end(&r, data);
    jg_nl_nest_end(&r, info);
    return jg_nl_talk(fd, &r, NULL);
}

/* An address on ifindex: `local`/prefix, or with peer != local a
 * point-to-point one (local/32 with a route to peer through the link). */
int jg_nl_addr_add(int fd, int ifindex, uint32_t local, uint32_t peer, int prefix)
{
    nlreq_t r;
    struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix,
                            .ifa_index = (unsigned)ifindex};
    jg_nl_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
    uint32_t a = htonl(local), p = htonl(peer);
    jg_nl_attr(&r, IFA_LOCAL, &a, sizeof a);
    jg_nl_attr(&r, IFA_ADDRESS, &p, sizeof p);
    return jg_nl_talk(fd, &r, NULL);
}

/* The default route: through gateway on link oif. */
int jg_nl_route_default(int fd, int oif, uint32_t gateway)
{
    nlreq_t r;
    struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
                       .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
                       .rtm_type = RTN_UNICAST};
    jg_nl_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt);
    uint32_t gw = htonl(gateway), o = (uint32_t)oif;
    jg_nl_attr(&r, RTA_GATEWAY, &gw, sizeof gw);
    jg_nl_attr(&r, RTA_OIF, &o, sizeof o);
    return jg_nl_talk(fd, &r, NULL);
}

/* The index of link `name` in the namespace of socket fd (if_nametoindex
 * only sees the caller's): > 0, or -errno. */
int jg_nl_link_index(int fd, const char *name)
{
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    jg_nl_init(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
    jg_nl_attr_str(&r, IFLA_IFNAME, name);
    int index = 0;
    int e = jg_nl_talk(fd, &r, &index);
    return e < 0 ? e : index > 0 ? index : -ENODEV;
}

/* Whether link `name` (in the namespace of socket fd) carries packets yet:
 * 1 yes, 0 not yet, -errno.  Bringing a veth up only sets its carrier; the
 * kernel's link watcher then, asynchronously, marks it running (operstate
 * up), swaps its "noop" qdisc, which drops everything, for a real one, and
 * tells a bridge it is a port of to let it forward.  port: also wait for
 * that (IFLA_BRPORT_STATE forwarding). */
int jg_nl_link_ready(int fd, const char *name, bool port)
{
    static uint32_t seq = 1u << 30;
    nlreq_t r;
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    jg_nl_init(&r, RTM_GETLINK, 0, &ifi, sizeof ifi);
    jg_nl_hdr(&r)->nlmsg_flags = NLM_F_REQUEST;
    jg_nl_hdr(&r)->nlmsg_seq = ++seq;
    jg_nl_attr_str(&r, IFLA_IFNAME, name);
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (sendto(fd, r.buf, jg_nl_hdr(&r)->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0)
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
int jg_nl_wait_links_ready(int node_nl, int hub_nl, const char *hub_if, int timeout_ms,
                            char *errbuf, size_t len)
{
    long waited_us = 0, step_us = 1000;
    for (;;) {
        int a = jg_nl_link_ready(node_nl, NODE_IF, false);
        int b = a == 1 ? jg_nl_link_ready(hub_nl, hub_if, true) : 0;
        if (a < 0 || b < 0)
            return jg_netns_fail(errbuf, len, "cannot read the state of the node's link: %s",
                        strerror(-(a < 0 ? a : b)));
        if (a == 1 && b == 1)
            return 0;
        if (waited_us >= (long)timeout_ms * 1000)
            return jg_netns_fail(errbuf, len, "the node's link (%s, %s in the group's network) did not "
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

/* ---- addresses -------------------------------------------------------------- */

int jg_netns_node_address(int index, char *buf, size_t len)
{
    if (index < 0 || index >= JG_NETNS_MAX_NODES)
        return -1;
    uint32_t a = HUB_BASE + 2u + (uint32_t)index;
    int n = snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u,
                     a & 255u);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

