/* netns_int.h - what netns.c, netns_link.c, netns_node.c and netns_nat.c share;
 * not a public contract. */
#ifndef JGSCHED_NETNS_INT_H
#define JGSCHED_NETNS_INT_H

#include <stddef.h>

#include <linux/netlink.h>
#include <stdbool.h>
#include <stdint.h>

#include "jgsched/netns.h"

#define BRIDGE "br0"                /* in every hub */
#define NODE_IF "eth0"              /* a node's end of its link */
#define HUB_BASE 0x0ac80000u        /* 10.200.0.0 */
#define UPLINK_IF "up0"             /* the hub's end of its uplink */
#define JG_NETNS_KEEPER_MSG 256     /* the longest reason a keeper gives for a failed set-up */
#define LINK_READY_MS 10000         /* how long a node waits for its link to carry packets */

/* Formats into buf (never overflows) and returns -1: the child's error idiom. */
int jg_netns_fail(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- rtnetlink (netns_link.c): each returns 0 (or an index) or -errno ---- */
/* One request, built in place: a header, a fixed body, then attributes. */
typedef struct {
    char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
} nlreq_t;
struct nlmsghdr *jg_nl_hdr(nlreq_t *r);
int jg_nl_open(void);               /* a bound NETLINK_ROUTE socket, or -1 + errno */
void jg_nl_init(nlreq_t *r, int type, int flags, const void *body, size_t len);
struct rtattr *jg_nl_attr(nlreq_t *r, int type, const void *data, size_t len);
void jg_nl_attr_str(nlreq_t *r, int type, const char *s);
void jg_nl_nest_end(nlreq_t *r, struct rtattr *nest);
int jg_nl_talk(int fd, nlreq_t *r, int *ifindex);
int jg_nl_link_up(int fd, int ifindex);
int jg_nl_link_del(int fd, const char *name);
int jg_nl_bridge_add(int fd, const char *name);
int jg_nl_veth_add(int fd, const char *name, int master, const char *peer, int peer_nsfd);
int jg_nl_addr_add(int fd, int ifindex, uint32_t local, uint32_t peer, int prefix);
int jg_nl_route_default(int fd, int oif, uint32_t gateway);
int jg_nl_link_index(int fd, const char *name);
int jg_nl_link_ready(int fd, const char *name, bool port);
int jg_nl_wait_links_ready(int node_nl, int hub_nl, const char *hub_if, int timeout_ms,
                           char *errbuf, size_t len);

/* A hub uplink's host end is named this, then its address in hex. */
#define JG_NETNS_UPLINK_HOST_PREFIX "jgu"

/* Writes text to an existing file such as a /proc/sys knob (no heap: the
 * node child uses it).  0, or -1 with errno. */
int jg_netns_write_text(const char *path, const char *text);

/* The nftables table of every rule jgsched installs (host and hubs). */
#define JG_NETNS_NFT_TABLE "jgsched"

/* Runs an nft script (one transaction) in the caller's network namespace;
 * 0, or -1 with the first line of nft's complaint in errbuf (netns_hub.c). */
int jg_netns_nft_apply(const char *script, char *errbuf, size_t len);

/* In the keeper (src/keeper.c), in a new process: (mode USERNS: creates and
 * maps its user namespace,) creates the hub's network namespace and br0,
 * and with uplink (mode ROOT only) the uplink and its NAT.  0, or -1 with a
 * message in errbuf (netns_hub.c; the startup probe uses it too). */
int jg_netns_hub_setup(jg_netns_mode_t mode, const jg_netns_uplink_t *uplink, char *errbuf,
                       size_t len);

/* In a hub's namespace (the keeper): masquerade what leaves
 * by link uplink_if.  0, or -1 with a message in errbuf. */
int jg_netns_nat_hub(const char *uplink_if, char *errbuf, size_t len);

#endif
